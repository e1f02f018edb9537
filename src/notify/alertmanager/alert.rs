//! One notice as Alertmanager's API v2 takes an alert (`postableAlert`), in the shape
//! Prometheus and vmalert send: identity in `labels`, everything else in `annotations`,
//! `endsAt` a few resend intervals ahead while firing and the resolve time once resolved.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::notify::Notice;
use crate::notify::message::NoticeState;
use crate::read_model::Rfc3339;

/// A firing alert is valid for this many resend intervals: Prometheus' own factor, so
/// one or two lost resends do not resolve it, and a wardops that is gone lets it expire.
pub const VALID_RESENDS: u32 = 4;

/// The labels wardops sets itself; a device label of the same name is posted as
/// `label_<name>` rather than overriding them.
const OWN_LABELS: &[&str] = &[
    "alertname",
    "device",
    "region",
    "branch",
    "kind",
    "severity",
];

/// Alertmanager's `postableAlert`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: Rfc3339,
    #[serde(rename = "endsAt")]
    pub ends_at: Rfc3339,
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
    /// Whether it tells of a resolve (kept for an Alertmanager that missed it).
    #[serde(skip)]
    pub resolved: bool,
}

impl PostableAlert {
    /// `notice` as an alert posted at `now` by a receiver that re-sends every `resend`.
    pub fn from_notice(notice: &Notice, now: DateTime<Utc>, resend: Duration) -> PostableAlert {
        let starts_at = notice.opened_at;
        let ends_at = match notice.state {
            NoticeState::Firing => now + valid_for(resend),
            NoticeState::Resolved => notice.resolved_at.unwrap_or(now),
        };
        PostableAlert {
            labels: labels(notice),
            annotations: annotations(notice),
            starts_at: Rfc3339(starts_at),
            // Alertmanager rejects an alert that ends before it starts (a clock that
            // stepped back between the two): such an alert ends as it starts.
            ends_at: Rfc3339(ends_at.max(starts_at)),
            generator_url: notice.url.clone(),
            resolved: notice.state == NoticeState::Resolved,
        }
    }

    /// A test alert (`wardops notify-test`) that names the receiver and ends by itself.
    pub fn test(receiver: &str, now: DateTime<Utc>, url: Option<String>) -> PostableAlert {
        let labels = [
            ("alertname", "WardopsTest"),
            ("receiver", receiver),
            ("severity", "none"),
        ];
        let summary = format!("test message from wardops to receiver {receiver:?}");
        PostableAlert {
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: BTreeMap::from([("summary".to_string(), summary)]),
            starts_at: Rfc3339(now),
            ends_at: Rfc3339(now + TimeDelta::minutes(5)),
            generator_url: url,
            resolved: false,
        }
    }
}

fn valid_for(resend: Duration) -> TimeDelta {
    TimeDelta::from_std(resend * VALID_RESENDS).unwrap_or(TimeDelta::hours(1))
}

/// The alert's identity: its condition and device, where the device is, and its labels.
/// Empty values are left out (Prometheus drops empty labels too).
fn labels(n: &Notice) -> BTreeMap<String, String> {
    let own = [
        ("alertname", &n.condition),
        ("device", &n.device),
        ("region", &n.region),
        ("branch", &n.branch),
        ("kind", &n.kind),
        ("severity", &n.severity),
    ];
    let mut labels: BTreeMap<String, String> = own
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    for (key, value) in &n.labels {
        if value.is_empty() {
            continue;
        }
        let mut name = label_name(key);
        if OWN_LABELS.contains(&name.as_str()) {
            name = format!("label_{name}");
        }
        // The inventory refuses two keys of one device that map to one name, so the
        // first one winning here only matters against `label_<own label>`.
        labels.entry(name).or_insert_with(|| value.clone());
    }
    labels
}

/// An inventory label key as an Alertmanager label name (`[a-zA-Z_][a-zA-Z0-9_]*`):
/// anything else becomes `_` (as `/metrics` writes them), a leading digit gets a `_`
/// before it. Alertmanager refuses a POST with any invalid name.
pub fn label_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len() + 1);
    if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
        name.push('_');
    }
    name.extend(
        key.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    name
}

/// What a person reads: the one-line summary, a sentence around it, when it started,
/// how much is unreachable behind it.
fn annotations(n: &Notice) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert("summary".to_string(), n.summary.clone());
    a.insert("description".to_string(), describe(n));
    a.insert("address".to_string(), n.address.clone());
    if let Some(since) = n.down_since {
        a.insert("down_since".to_string(), Rfc3339(since).to_string());
    }
    a.insert(
        "unreachable_behind".to_string(),
        n.unreachable_behind.to_string(),
    );
    a
}

/// E.g. `router e-01-r1 (127.77.0.5) in east/e-01: device_down since
/// 2026-12-02T06:49:22.000Z; 7 devices unreachable behind it.`
pub fn describe(n: &Notice) -> String {
    let mut text = format!("{} {} ({})", n.kind, n.device, n.address);
    let place: Vec<&str> = [n.region.as_str(), n.branch.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    if !place.is_empty() {
        text.push_str(&format!(" in {}", place.join("/")));
    }
    text.push_str(&format!(": {}", n.condition));
    let since = n.down_since.unwrap_or(n.opened_at);
    text.push_str(&format!(" since {}", Rfc3339(since)));
    if let (NoticeState::Resolved, Some(at)) = (n.state, n.resolved_at) {
        text.push_str(&format!(", resolved at {}", Rfc3339(at)));
    }
    match n.unreachable_behind {
        0 => text.push('.'),
        1 => text.push_str("; 1 device unreachable behind it."),
        k => text.push_str(&format!("; {k} devices unreachable behind it.")),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::fixture::{notice, t};

    #[test]
    fn a_firing_alert_is_shaped_as_prometheus_sends_it() {
        let now = t("2026-12-02T06:50:00Z");
        let alert =
            PostableAlert::from_notice(&notice(NoticeState::Firing), now, Duration::from_secs(60));
        let json = serde_json::to_value(&alert).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "labels": {
                    "alertname": "device_down", "device": "e-01-r1", "region": "east",
                    "branch": "e-01", "kind": "router", "severity": "critical",
                    "tier": "gold", "app_kubernetes_io_part_of": "atm",
                    "label_severity": "low", "_9lives": "cat",
                },
                "annotations": {
                    "summary": "e-01-r1 is down",
                    "description": "router e-01-r1 (127.77.0.5) in east/e-01: device_down since 2026-12-02T06:49:22.000Z; 7 devices unreachable behind it.",
                    "address": "127.77.0.5",
                    "down_since": "2026-12-02T06:49:22.000Z",
                    "unreachable_behind": "7",
                },
                "startsAt": "2026-12-02T06:49:30.000Z",
                "endsAt": "2026-12-02T06:54:00.000Z",
                "generatorURL": "https://wardops.bank.example/devices/e-01-r1",
            })
        );
    }

    #[test]
    fn a_resolved_alert_ends_at_its_resolve_time_whenever_it_is_posted() {
        let now = t("2026-12-02T09:00:00Z");
        let alert = PostableAlert::from_notice(
            &notice(NoticeState::Resolved),
            now,
            Duration::from_secs(60),
        );
        assert_eq!(alert.ends_at, Rfc3339(t("2026-12-02T07:00:00Z")));
        assert!(alert.annotations["description"].contains("resolved at 2026-12-02T07:00:00.000Z"));
    }

    #[test]
    fn an_alert_never_ends_before_it_starts() {
        let mut n = notice(NoticeState::Resolved);
        n.resolved_at = Some(t("2026-12-02T06:00:00Z"));
        let alert = PostableAlert::from_notice(&n, t("2026-12-02T09:00:00Z"), Duration::ZERO);
        assert_eq!(alert.ends_at, alert.starts_at);
    }

    #[test]
    fn label_names_are_valid_for_alertmanager() {
        assert_eq!(label_name("tier"), "tier");
        assert_eq!(label_name("a-b.c/d"), "a_b_c_d");
        assert_eq!(label_name("1x"), "_1x");
        assert_eq!(label_name(""), "_");
        assert_eq!(label_name("გუნდი"), "_____");
    }

    #[test]
    fn a_device_without_branch_or_labels_has_no_empty_labels() {
        let mut n = notice(NoticeState::Firing);
        n.branch = String::new();
        n.labels.clear();
        n.down_since = None;
        n.unreachable_behind = 0;
        let alert = PostableAlert::from_notice(&n, t("2026-12-02T06:50:00Z"), Duration::ZERO);
        assert!(!alert.labels.contains_key("branch"));
        assert!(!alert.annotations.contains_key("down_since"));
        assert_eq!(
            alert.annotations["description"],
            "router e-01-r1 (127.77.0.5) in east: device_down since 2026-12-02T06:49:30.000Z."
        );
    }
}
