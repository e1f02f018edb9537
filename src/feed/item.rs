//! One event of the live feed, rendered once for every client: its id ([`Key`]), its
//! scope for the `region`/`branch`/`kind` filters, and its complete SSE frame.
//!
//! Ids are `(state_version, n)`: `n` is 0 for state events (transitions, inventory
//! reloads) and counts the alert events published since that version's event, written
//! `"v"` or `"v.n"`. Either way they strictly increase, and a resume point of either
//! kind is exact. (An alert is not keyed by the version of the transition that caused
//! it: it is committed later, after newer versions may have gone out.)

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

/// An event id: state version, then the alert events noticed at that version.
pub type Key = (u64, u32);

pub fn format_key((v, n): Key) -> String {
    if n == 0 {
        v.to_string()
    } else {
        format!("{v}.{n}")
    }
}

pub fn parse_key(text: &str) -> Option<Key> {
    let text = text.trim();
    match text.split_once('.') {
        Some((v, n)) => Some((v.parse().ok()?, n.parse().ok()?)),
        None => Some((text.parse().ok()?, 0)),
    }
}

/// Where an event belongs, for the `region`/`branch`/`kind` filters.
#[derive(Debug, Clone)]
pub struct Scope {
    pub region: Arc<str>,
    pub branch: Arc<str>,
    pub kind: Arc<str>,
}

/// One event, rendered once for every client.
#[derive(Debug)]
pub struct Item {
    pub key: Key,
    pub name: &'static str,
    /// None: relevant to every filter (inventory reloads, alerts of devices no longer in
    /// the inventory).
    pub scope: Option<Scope>,
    /// The complete SSE frame: `id`, `event`, `data`, blank line.
    pub frame: Bytes,
}

impl Item {
    pub fn new(key: Key, name: &'static str, scope: Option<Scope>, data: &impl Serialize) -> Item {
        let json = serde_json::to_string(data).expect("event data serialises");
        let mut frame = String::with_capacity(json.len() + 48);
        let _ = write!(
            frame,
            "id: {}\nevent: {name}\ndata: {json}\n\n",
            format_key(key)
        );
        Item {
            key,
            name,
            scope,
            frame: Bytes::from(frame),
        }
    }
}

/// A frame without an id (resets, drops, shutdown): it must not move the client's
/// `Last-Event-ID`.
pub fn control_frame(name: &str, data: &impl Serialize) -> Bytes {
    let json = serde_json::to_string(data).expect("event data serialises");
    Bytes::from(format!("event: {name}\ndata: {json}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_order() {
        assert_eq!(parse_key("12"), Some((12, 0)));
        assert_eq!(parse_key("12.3"), Some((12, 3)));
        assert_eq!(parse_key("x"), None);
        assert_eq!(format_key((12, 3)), "12.3");
        assert!((12, 3) < (13, 0));
    }
}
