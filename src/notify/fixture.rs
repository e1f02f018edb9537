//! Test fixtures shared by the receivers' unit tests: one notice as the engine builds it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::Notice;
use super::message::NoticeState;

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub fn notice(state: NoticeState) -> Notice {
    Notice {
        outbox_id: 7,
        state,
        alert_id: 3,
        condition: "device_down".into(),
        severity: "critical".into(),
        device: "e-01-r1".into(),
        address: "127.77.0.5".into(),
        region: "east".into(),
        branch: "e-01".into(),
        kind: "router".into(),
        labels: BTreeMap::from([
            ("tier".to_string(), "gold".to_string()),
            ("app.kubernetes.io/part-of".to_string(), "atm".to_string()),
            ("severity".to_string(), "low".to_string()),
            ("9lives".to_string(), "cat".to_string()),
            ("empty".to_string(), String::new()),
        ]),
        summary: "e-01-r1 is down".into(),
        opened_at: t("2026-12-02T06:49:30Z"),
        resolved_at: (state == NoticeState::Resolved).then(|| t("2026-12-02T07:00:00Z")),
        down_since: Some(t("2026-12-02T06:49:22Z")),
        unreachable_behind: 7,
        url: Some("https://wardops.bank.example/devices/e-01-r1".into()),
    }
}
