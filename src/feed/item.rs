//! One event of the live feed, rendered once for every client: its id ([`Key`]), its
//! scope for the `region`/`branch`/`kind` filters, and its complete SSE frame.
//!
//! Keys are `(state_version, n)`: `n` is 0 for state events (transitions, inventory
//! reloads) and counts the alert events published since that version's event. Either
//! way they strictly increase, and a resume point of either kind is exact. (An alert is
//! not keyed by the version of the transition that caused it: it is committed later,
//! after newer versions may have gone out.)
//!
//! State versions start over with the process, so an id also names its [`Boot`]: it is
//! written `"<boot>-v"` or `"<boot>-v.n"` (`"5f0c9a1e-42.1"`). A client resuming with
//! another process's id, or with an id of the older `"v[.n]"` form (from a release that
//! did not write the boot), is told to reset instead of being replayed the wrong events.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

/// An event key: state version, then the alert events noticed at that version.
pub type Key = (u64, u32);

/// The process (hub) that issued an id: random, made when the hub is.
pub type Boot = u32;

/// An event id as a client sends it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId {
    /// None for an id of the older form, which names no process.
    pub boot: Option<Boot>,
    pub key: Key,
}

pub fn format_id(boot: Boot, (v, n): Key) -> String {
    if n == 0 {
        format!("{boot:08x}-{v}")
    } else {
        format!("{boot:08x}-{v}.{n}")
    }
}

/// An id of either form; None when it is neither.
pub fn parse_id(text: &str) -> Option<EventId> {
    let text = text.trim();
    let (boot, key) = match text.split_once('-') {
        Some((boot, key)) if boot.len() == 8 => (Some(Boot::from_str_radix(boot, 16).ok()?), key),
        Some(_) => return None,
        None => (None, text),
    };
    let key = match key.split_once('.') {
        Some((v, n)) => (v.parse().ok()?, n.parse().ok()?),
        None => (key.parse().ok()?, 0),
    };
    Some(EventId { boot, key })
}

/// Where an event belongs, for the `region`/`branch`/`kind` filters.
#[derive(Debug, Clone)]
pub struct Scope {
    pub region: Arc<str>,
    pub branch: Arc<str>,
    pub kind: Arc<str>,
}

impl Scope {
    /// Where `device` stands.
    pub fn of(device: &crate::config::Device) -> Scope {
        Scope {
            region: device.region.clone(),
            branch: device.branch.clone(),
            kind: device.kind.clone(),
        }
    }
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
    /// Event `key` of the hub started as `boot`.
    pub fn new(
        boot: Boot,
        key: Key,
        name: &'static str,
        scope: Option<Scope>,
        data: &impl Serialize,
    ) -> Item {
        let json = serde_json::to_string(data).expect("event data serialises");
        let mut frame = String::with_capacity(json.len() + 56);
        let _ = write!(
            frame,
            "id: {}\nevent: {name}\ndata: {json}\n\n",
            format_id(boot, key)
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
    fn ids_round_trip_and_order() {
        let id = |boot, key| Some(EventId { boot, key });
        assert_eq!(format_id(0x5f0c_9a1e, (12, 3)), "5f0c9a1e-12.3");
        assert_eq!(format_id(7, (12, 0)), "00000007-12");
        assert_eq!(parse_id("5f0c9a1e-12.3"), id(Some(0x5f0c_9a1e), (12, 3)));
        assert_eq!(parse_id(" 00000007-12 "), id(Some(7), (12, 0)));
        assert!((12, 3) < (13, 0));
    }

    #[test]
    fn ids_of_the_older_form_name_no_process() {
        assert_eq!(
            parse_id("12"),
            Some(EventId {
                boot: None,
                key: (12, 0)
            })
        );
        assert_eq!(
            parse_id("12.3").map(|i| (i.boot, i.key)),
            Some((None, (12, 3)))
        );
    }

    #[test]
    fn malformed_ids_are_refused() {
        for text in [
            "x",
            "",
            "5f0c9a1e-",
            "5f0c9a1e-x",
            "5f0c9a1-12",
            "zzzzzzzz-12",
            "-12",
            "1.x",
        ] {
            assert_eq!(parse_id(text), None, "{text:?}");
        }
    }
}
