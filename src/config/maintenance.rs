//! `maintenance:` in the inventory: the list of windows a region, a branch or a device
//! states, read as written ([`read`], called by [`super::raw`]) and then checked into
//! [`Window`]s ([`windows`], called by [`super::load`]), every problem at its place.
//!
//! A window is one of
//! - a one-off: `{ start: 2026-12-06T22:00, end: 2026-12-07T02:00 }`;
//! - weekly: `{ days: [sun], from: "22:00", to: "02:00" }` (crosses midnight when `to`
//!   is not after `from`);
//! - cron: `{ cron: "0 22 * * 0", duration: 4h }`;
//!
//! each with an optional `zone:` (an IANA name; else `maintenance.zone` of the settings)
//! and `reason:`. This file is the grammar; [`check`] the checks. What the windows mean
//! in time is [`crate::maintenance`]'s.

use std::str::FromStr;

use chrono_tz::Tz;

use super::error::{Location, Spanned};
use super::walk::{Text, Walk, Walker};
use super::yaml::Event;

mod check;

pub(in crate::config) use check::windows;

/// One window as written: every key optional here, checked by [`windows`].
#[derive(Debug, Default)]
pub struct RawWindow<'a> {
    /// The window's mapping.
    at: Location,
    /// Keys seen, as bits by index into [`WINDOW_KEYS`] (all set after an unknown key).
    seen: u32,
    start: Option<Spanned<Text<'a>>>,
    end: Option<Spanned<Text<'a>>>,
    days: Vec<Spanned<Text<'a>>>,
    from: Option<Spanned<Text<'a>>>,
    to: Option<Spanned<Text<'a>>>,
    cron: Option<Spanned<Text<'a>>>,
    duration: Option<Spanned<Text<'a>>>,
    zone: Option<Spanned<Text<'a>>>,
    reason: Option<Spanned<Text<'a>>>,
}

pub(in crate::config) const WINDOW_KEYS: &[&str] = &[
    "start", "end", "days", "from", "to", "cron", "duration", "zone", "reason",
];
/// The keys of each kind of window, by index into [`WINDOW_KEYS`].
const ONE_OFF: u32 = 0b11;
const WEEKLY: u32 = 0b111 << 2;
const CRON: u32 = 0b11 << 5;

/// Reads the value of a `maintenance:` key: a list of windows (null: none).
pub(super) fn read<'a>(w: &mut Walker<'a, '_>) -> Walk<Vec<RawWindow<'a>>> {
    let mut out = Vec::new();
    let first = w.next()?;
    if matches!(&first, Event::Scalar(s) if s.is_null()) {
        return Ok(out);
    }
    let Event::SequenceStart(_) = first else {
        let at = start_of(&first);
        w.error(at, "maintenance: expected a list of windows");
        w.skip(first)?;
        return Ok(out);
    };
    loop {
        let item = w.next()?;
        if item == Event::SequenceEnd {
            return Ok(out);
        }
        if let Some(window) = window(w, item)? {
            out.push(window);
        }
    }
}

fn window<'a>(w: &mut Walker<'a, '_>, first: Event<'a>) -> Walk<Option<RawWindow<'a>>> {
    let Some(at) = w.open_mapping(Some("maintenance"), first)? else {
        return Ok(None);
    };
    let mut raw = RawWindow {
        at,
        ..RawWindow::default()
    };
    let seen = w.mapping("maintenance window", WINDOW_KEYS, |w, key| {
        let name = WINDOW_KEYS[key];
        match key {
            0 => raw.start = w.text(name)?,
            1 => raw.end = w.text(name)?,
            2 => w.list(name, |w, item| {
                match item {
                    Event::Scalar(s) => raw.days.push(Spanned {
                        value: s.value,
                        at: s.at,
                    }),
                    other => {
                        w.error(start_of(&other), "days: expected a day such as sun");
                        w.skip(other)?;
                    }
                }
                Ok(())
            })?,
            3 => raw.from = w.text(name)?,
            4 => raw.to = w.text(name)?,
            5 => raw.cron = w.text(name)?,
            6 => raw.duration = w.text(name)?,
            7 => raw.zone = w.text(name)?,
            _ => raw.reason = w.optional_text(name)?,
        }
        Ok(())
    })?;
    raw.seen = seen;
    Ok(Some(raw))
}

fn start_of(event: &Event<'_>) -> Location {
    match event {
        Event::MappingStart(at) | Event::SequenceStart(at) => *at,
        Event::Scalar(s) => s.at,
        _ => Location { line: 1, column: 1 },
    }
}

/// An IANA zone name (`Asia/Tbilisi`, `UTC`), exactly as the database spells it.
pub fn parse_zone(text: &str) -> Result<Tz, String> {
    let text = text.trim();
    if let Ok(zone) = Tz::from_str(text) {
        return Ok(zone);
    }
    let hint = chrono_tz::TZ_VARIANTS
        .iter()
        .find(|z| z.name().eq_ignore_ascii_case(text))
        .map(|z| format!("did you mean {:?}?", z.name()))
        .unwrap_or_else(|| "an IANA name such as Asia/Tbilisi or UTC".to_string());
    Err(format!("unknown time zone {text:?} ({hint})"))
}
