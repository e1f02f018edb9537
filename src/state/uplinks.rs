//! A router's ISP lines (issue #19): each poll of its agent turned into one status per
//! line, and the decision to open or resolve its `uplink_down` warning. Pure logic, no
//! I/O, no clock; [`publish`] is the state's side.
//!
//! - **A line's status** is its interface's ifOperStatus: `up`; `down` (also
//!   `lowerLayerDown`, `notPresent`); `unknown` with the reason otherwise — the agent
//!   did not answer (the reader's words: no answer, wrong community, wrong key), the
//!   interface the inventory names is not in its table, or the agent says `testing`,
//!   `dormant` or `unknown`. A line whose interface is administratively down is `down`
//!   with `admin_down`: someone shut it on purpose.
//! - **Since** is kept while the status stays the same; `unknown` with another reason is
//!   the same status.
//! - **The alert**, one per router (the `alerts_one_open` rule of the store): it opens
//!   only when a line goes from `up` to `down` — an interface that was down since the
//!   appliance first read it stays quiet — and never for an admin-down one; not while
//!   the device is in maintenance or not `up` itself (down, unreachable behind its
//!   parents, not decided yet): a change seen then waits, and the alert opens at the
//!   first poll after, if the line is still down. It resolves once every line is `up`
//!   or admin-down again (`unknown` is not a recovery: a silent agent resolves
//!   nothing). What a previous run left open is resolved at the first poll that finds
//!   every line clear.
//!
//! Traffic (octet counters and the rates between two polls) is not versioned: it
//! changes at every poll and lives in the device's runtime ([`Book`]).

pub mod publish;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Device;
use crate::config::snmp::{DeviceSnmp, Uplinks as Configured};
use crate::snmp::uplink::{self, Matcher};
use crate::snmp::{AdminStatus, Interface, OperStatus, ReadError};

/// One line's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LineStatus {
    Up,
    Down,
    Unknown,
}

impl LineStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LineStatus::Up => "up",
            LineStatus::Down => "down",
            LineStatus::Unknown => "unknown",
        }
    }
}

/// One ISP line of a router as of a state version.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub isp: Arc<str>,
    pub status: LineStatus,
    /// Why `unknown`; for an admin-down line, that it is.
    pub reason: Option<Arc<str>>,
    pub since: DateTime<Utc>,
    /// ifAdminStatus is `down`: shut on purpose, never alerted.
    pub admin_down: bool,
    /// The interface found for it (ifName, else ifDescr) and its ifIndex.
    pub interface: Option<Arc<str>>,
    pub if_index: Option<u32>,
}

impl Line {
    /// Down on its own, not shut by someone.
    pub fn is_failed(&self) -> bool {
        self.status == LineStatus::Down && !self.admin_down
    }
}

/// A router's lines as of a state version.
#[derive(Debug, Clone, PartialEq)]
pub struct Uplinks {
    /// In the inventory's order (its list, or its region's rules).
    pub lines: Box<[Line]>,
    /// Why no line could be named at all: the region's rules matched no interface, or
    /// the agent has not answered yet while the lines come from rules.
    pub problem: Option<Arc<str>>,
}

impl Uplinks {
    /// True while the router (whose own status is `router`) answers ping and one of its
    /// lines is down: the branch works on its backup line. The one rule every surface
    /// shows.
    pub fn on_backup_line(&self, router: crate::state::Status) -> bool {
        router == crate::state::Status::Up && self.on_backup()
    }

    /// True while a line is down and another is up.
    pub fn on_backup(&self) -> bool {
        self.lines.iter().any(|l| l.status == LineStatus::Down)
            && self.lines.iter().any(|l| l.status == LineStatus::Up)
    }

    pub fn down(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(|l| l.status == LineStatus::Down)
    }

    pub fn line(&self, isp: &str) -> Option<&Line> {
        self.lines.iter().find(|l| &*l.isp == isp)
    }

    /// Every line `up` or shut on purpose: nothing to alert about.
    fn is_clear(&self) -> bool {
        self.problem.is_none()
            && self
                .lines
                .iter()
                .all(|l| l.status == LineStatus::Up || l.admin_down)
    }
}

/// One line as a poll found it, before `since` is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub isp: Arc<str>,
    pub status: LineStatus,
    pub reason: Option<Arc<str>>,
    pub admin_down: bool,
    pub interface: Option<Arc<str>>,
    pub if_index: Option<u32>,
    pub in_octets: Option<u64>,
    pub out_octets: Option<u64>,
}

impl Observed {
    fn unknown(isp: Arc<str>, reason: Arc<str>) -> Observed {
        Observed {
            isp,
            status: LineStatus::Unknown,
            reason: Some(reason),
            admin_down: false,
            interface: None,
            if_index: None,
            in_octets: None,
            out_octets: None,
        }
    }

    fn of(isp: Arc<str>, i: &Interface) -> Observed {
        let admin_down = i.admin == Some(AdminStatus::Down);
        let (status, reason) = match i.oper {
            Some(OperStatus::Up) => (LineStatus::Up, None),
            Some(OperStatus::Down | OperStatus::LowerLayerDown | OperStatus::NotPresent) => {
                (LineStatus::Down, None)
            }
            other => {
                let word = match other {
                    Some(OperStatus::Testing) => "testing".to_string(),
                    Some(OperStatus::Dormant) => "dormant".to_string(),
                    Some(OperStatus::Unknown) => "unknown".to_string(),
                    Some(OperStatus::Other(v)) => format!("{v} (not in IF-MIB)"),
                    _ => "not given".to_string(),
                };
                (
                    LineStatus::Unknown,
                    Some(Arc::from(format!("ifOperStatus is {word}"))),
                )
            }
        };
        let reason = match (admin_down, reason) {
            (true, None) => Some(Arc::from("administratively down")),
            (_, reason) => reason,
        };
        let status = if admin_down { LineStatus::Down } else { status };
        Observed {
            isp,
            status,
            reason,
            admin_down,
            interface: i.name.as_deref().or(i.descr.as_deref()).map(Arc::from),
            if_index: Some(i.index),
            in_octets: i.in_octets,
            out_octets: i.out_octets,
        }
    }
}

/// The lines a poll found: each configured line's interface looked up in `reading`, or
/// every line `unknown` with the agent's failure as the reason. Lines named by rules
/// are those of the last answer when the agent is silent (`previous`).
pub fn observe(
    snmp: &DeviceSnmp,
    reading: &Result<Vec<Interface>, ReadError>,
    previous: Option<&Uplinks>,
) -> (Vec<Observed>, Option<Arc<str>>) {
    let interfaces = match reading {
        Ok(interfaces) => interfaces,
        Err(e) => {
            let reason: Arc<str> = Arc::from(e.to_string());
            let isps: Vec<Arc<str>> = match &snmp.uplinks {
                Configured::Listed(list) => list.iter().map(|u| u.isp.clone()).collect(),
                Configured::ByAlias(_) => previous
                    .map(|p| p.lines.iter().map(|l| l.isp.clone()).collect())
                    .unwrap_or_default(),
            };
            let problem = isps.is_empty().then(|| reason.clone());
            let lines = isps
                .into_iter()
                .map(|isp| Observed::unknown(isp, reason.clone()))
                .collect();
            return (lines, problem);
        }
    };
    match &snmp.uplinks {
        Configured::Listed(list) => {
            let lines = list
                .iter()
                .map(|u| match uplink::pick(interfaces, &u.interface) {
                    Some(i) => Observed::of(u.isp.clone(), i),
                    None => Observed::unknown(u.isp.clone(), Arc::from(not_found(&u.interface))),
                })
                .collect();
            (lines, None)
        }
        Configured::ByAlias(rules) => {
            // Each ISP once, in the order its first rule is written; its interface the
            // lowest ifIndex whose alias the rules give to it.
            let mut lines: Vec<Observed> = Vec::new();
            let mut sorted: Vec<&Interface> = interfaces.iter().collect();
            sorted.sort_by_key(|i| i.index);
            for rule in rules.iter() {
                if lines.iter().any(|l| *l.isp == *rule.isp) {
                    continue;
                }
                let found = sorted.iter().find(|i| {
                    i.alias
                        .as_deref()
                        .and_then(|a| uplink::isp_for_alias(rules, a))
                        == Some(&*rule.isp)
                });
                if let Some(i) = found {
                    lines.push(Observed::of(Arc::from(&*rule.isp), i));
                }
            }
            let problem = lines
                .is_empty()
                .then(|| Arc::from("no interface's ifAlias matches the region's uplink rules"));
            (lines, problem)
        }
    }
}

fn not_found(m: &Matcher) -> String {
    match m {
        Matcher::Name(n) => format!("no interface with ifName {n:?}"),
        Matcher::Descr(d) => format!("no interface with ifDescr {d:?}"),
        Matcher::Alias(a) => format!("no interface with ifAlias {a:?}"),
        Matcher::Index(x) => format!("no interface with ifIndex {x}"),
    }
}

/// The lines after a poll at `at`: `since` kept where the status did not change.
pub fn next(
    previous: Option<&Uplinks>,
    observed: &[Observed],
    problem: Option<Arc<str>>,
    at: DateTime<Utc>,
) -> Uplinks {
    let lines = observed
        .iter()
        .map(|o| {
            let before = previous.and_then(|p| p.line(&o.isp));
            let since = match before {
                Some(b) if b.status == o.status && b.admin_down == o.admin_down => b.since,
                _ => at,
            };
            Line {
                isp: o.isp.clone(),
                status: o.status,
                reason: o.reason.clone(),
                since,
                admin_down: o.admin_down,
                interface: o.interface.clone(),
                if_index: o.if_index,
            }
        })
        .collect();
    Uplinks { lines, problem }
}

/// What the store was last told about the device's `uplink_down` alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alerted {
    /// Nothing yet in this run: an earlier one may have left it open.
    #[default]
    Unknown,
    Open,
    Resolved,
}

/// An alert change for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertChange {
    Open { message: String },
    Resolve { why: &'static str },
}

/// One line's traffic between its last two readings.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Traffic {
    pub in_octets: Option<u64>,
    pub out_octets: Option<u64>,
    /// Bits per second over the last two polls; None after a counter reset or before
    /// the second reading.
    pub in_bps: Option<f64>,
    pub out_bps: Option<f64>,
    pub at: Option<DateTime<Utc>>,
}

impl Traffic {
    fn after(self, o: &Observed, at: DateTime<Utc>) -> Traffic {
        let seconds = self
            .at
            .map(|t| (at - t).num_microseconds().unwrap_or(0) as f64 / 1e6)
            .filter(|s| *s > 0.0);
        let rate = |before: Option<u64>, now: Option<u64>| match (before, now, seconds) {
            // A counter that went back was reset (a reboot): no rate this time.
            (Some(b), Some(n), Some(s)) if n >= b => Some((n - b) as f64 * 8.0 / s),
            _ => None,
        };
        Traffic {
            in_bps: rate(self.in_octets, o.in_octets),
            out_bps: rate(self.out_octets, o.out_octets),
            in_octets: o.in_octets,
            out_octets: o.out_octets,
            at: Some(at),
        }
    }
}

/// What the device's runtime keeps between polls.
#[derive(Debug, Default)]
pub struct Book {
    pub alerted: Alerted,
    /// The ISPs of the lines seen going from `up` to `down` and not up since: what an
    /// alert is about, and what waits while it is suppressed.
    pending: Vec<Arc<str>>,
    /// Per ISP, the last counters and rates.
    pub traffic: Vec<(Arc<str>, Traffic)>,
    pub polled_at: Option<DateTime<Utc>>,
    /// Polls done and polls the agent did not answer.
    pub polls: u64,
    pub failures: u64,
    /// The last poll was answered.
    pub answered: bool,
}

impl Book {
    /// Takes in one poll's lines: counters, and which lines went down.
    pub fn record(
        &mut self,
        previous: Option<&Uplinks>,
        next: &Uplinks,
        observed: &[Observed],
        failed: bool,
        at: DateTime<Utc>,
    ) {
        self.polls += 1;
        self.failures += u64::from(failed);
        self.answered = !failed;
        self.polled_at = Some(at);
        if !failed {
            let traffic = observed
                .iter()
                .map(|o| {
                    let before = self
                        .traffic
                        .iter()
                        .find(|(isp, _)| *isp == o.isp)
                        .map(|(_, t)| *t)
                        .unwrap_or_default();
                    (o.isp.clone(), before.after(o, at))
                })
                .collect();
            self.traffic = traffic;
        }
        for line in next.lines.iter().filter(|l| l.is_failed()) {
            let was_up = previous
                .and_then(|p| p.line(&line.isp))
                .is_some_and(|b| b.status == LineStatus::Up);
            if was_up && !self.pending.contains(&line.isp) {
                self.pending.push(line.isp.clone());
            }
        }
        // Still not back: down, or unknown (a silent agent says nothing of recovery).
        self.pending.retain(|isp| {
            next.line(isp)
                .is_some_and(|l| l.status != LineStatus::Up && !l.admin_down)
        });
    }

    /// The alert change after a poll, `suppressed` while the device is in maintenance
    /// or not `up`; None when nothing changes.
    pub fn decide(
        &mut self,
        device: &Device,
        next: &Uplinks,
        suppressed: bool,
    ) -> Option<AlertChange> {
        let change = if next.is_clear() && self.alerted != Alerted::Resolved {
            Some(AlertChange::Resolve { why: "recovered" })
        } else if self.alerted != Alerted::Open && !self.pending.is_empty() && !suppressed {
            Some(AlertChange::Open {
                message: message(device, next, &self.pending),
            })
        } else {
            None
        };
        match &change {
            Some(AlertChange::Open { .. }) => self.alerted = Alerted::Open,
            Some(AlertChange::Resolve { .. }) => self.alerted = Alerted::Resolved,
            None => {}
        }
        change
    }

    pub fn traffic(&self, isp: &str) -> Traffic {
        self.traffic
            .iter()
            .find(|(i, _)| &**i == isp)
            .map(|(_, t)| *t)
            .unwrap_or_default()
    }
}

/// `uplink Magti down on vake-rtr (Gi0/0): on its backup line (Silknet)`.
fn message(device: &Device, next: &Uplinks, pending: &[Arc<str>]) -> String {
    let lines: Vec<String> = pending
        .iter()
        .map(
            |isp| match next.line(isp).and_then(|l| l.interface.as_deref()) {
                Some(interface) => format!("{isp} ({interface})"),
                None => isp.to_string(),
            },
        )
        .collect();
    let up: Vec<&str> = next
        .lines
        .iter()
        .filter(|l| l.status == LineStatus::Up)
        .map(|l| &*l.isp)
        .collect();
    let rest = if up.is_empty() {
        "no other line is up".to_string()
    } else {
        format!("on its backup line ({})", up.join(", "))
    };
    let what = if lines.len() == 1 {
        "uplink"
    } else {
        "uplinks"
    };
    format!(
        "{what} {} down on {}: {rest}",
        lines.join(", "),
        device.name
    )
}

#[cfg(test)]
mod tests;
