use std::collections::BTreeMap;

use super::*;
use crate::notify::fixture::notice;
use crate::notify::message::NoticeState;

fn message(notices: Vec<Notice>) -> Message {
    Message {
        receiver: "noc-mail".into(),
        idempotency_key: "wardops-noc-mail-42".into(),
        group: BTreeMap::from([
            ("branch".to_string(), "e-01".to_string()),
            ("region".to_string(), "east".to_string()),
        ]),
        notices,
        summarised: 0,
        test: false,
    }
}

/// `count` firing `device_down` notices of devices `e-01-d0…` in east/e-01.
fn down(count: usize, state: NoticeState) -> Vec<Notice> {
    (0..count)
        .map(|i| {
            let mut n = notice(state);
            n.device = format!("e-01-d{i}");
            n
        })
        .collect()
}

#[test]
fn the_subject_names_the_branch_and_the_count() {
    let m = message(down(7, NoticeState::Firing));
    assert_eq!(subject(&m), "[wardops] east/e-01: 7 devices down");
    let m = message(down(7, NoticeState::Resolved));
    assert_eq!(
        subject(&m),
        "[wardops] east/e-01: resolved, 7 devices up again"
    );
    let mut both = down(3, NoticeState::Firing);
    both.extend(down(4, NoticeState::Resolved));
    assert_eq!(
        subject(&message(both)),
        "[wardops] east/e-01: 3 devices down, 4 resolved"
    );
}

#[test]
fn one_notice_names_its_device_and_other_conditions_are_alerts() {
    let m = message(down(1, NoticeState::Firing));
    assert_eq!(subject(&m), "[wardops] east/e-01: 1 device down (e-01-d0)");
    let mut flapping = down(2, NoticeState::Firing);
    flapping[1].condition = "flapping".into();
    assert_eq!(
        subject(&message(flapping)),
        "[wardops] east/e-01: 2 alerts firing"
    );
}

#[test]
fn a_message_across_branches_or_regions_says_so() {
    let mut notices = down(2, NoticeState::Firing);
    notices[1].branch = "e-02".into();
    assert_eq!(
        subject(&message(notices.clone())),
        "[wardops] east (several branches): 2 devices down"
    );
    notices[1].region = "west".into();
    assert_eq!(
        subject(&message(notices)),
        "[wardops] 2 regions: 2 devices down"
    );
}

#[test]
fn a_summary_and_a_test_message_have_their_own_subjects() {
    let mut m = message(Vec::new());
    m.summarised = 120;
    assert_eq!(
        subject(&m),
        "[wardops] e-01/east: nothing new (+120 older, summarised)"
    );
    m.test = true;
    assert_eq!(subject(&m), "[wardops] test message to receiver noc-mail");
    let mail = render(&m).unwrap();
    assert!(
        mail.plain.contains("no alert is behind it"),
        "{}",
        mail.plain
    );
}

#[test]
fn the_plain_part_lists_every_device_with_what_happened() {
    let mut notices = down(2, NoticeState::Firing);
    notices.extend(down(1, NoticeState::Resolved));
    let mail = render(&message(notices)).unwrap();
    let plain = &mail.plain;
    assert!(plain.starts_with("[wardops] east/e-01: 2 devices down, 1 resolved\n\n"));
    assert!(plain.contains("FIRING (2)\n"), "{plain}");
    assert!(plain.contains(
        "* e-01-d1 (router, 127.77.0.5) in east/e-01: e-01-r1 is down\n  device_down, severity critical, since 2026-12-02T06:49:22.000Z\n  7 devices unreachable behind it\n"
    ), "{plain}");
    assert!(plain.contains("RESOLVED (1)\n"), "{plain}");
    assert!(
        plain.contains("resolved at 2026-12-02T07:00:00.000Z"),
        "{plain}"
    );
    assert!(
        plain.contains("https://wardops.bank.example/devices/e-01-r1"),
        "{plain}"
    );
    assert!(
        plain.ends_with("message wardops-noc-mail-42\n"),
        "{plain:?}"
    );
    assert!(!plain.contains("\n\n\n"), "no runs of blank lines: {plain}");
}

#[test]
fn the_html_part_escapes_everything_from_the_inventory() {
    let mut notices = down(1, NoticeState::Firing);
    notices[0].device = "<script>alert(1)</script>".into();
    notices[0].summary = "R&D \"core\" <b>down</b>".into();
    notices[0]
        .labels
        .insert("owner".into(), "<img src=x onerror=alert(1)>".into());
    let mail = render(&message(notices)).unwrap();
    let html = &mail.html;
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("<b>down"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{html}"
    );
    assert!(html.contains("R&amp;D &quot;core&quot;"), "{html}");
    // The plain part is text: shown as written.
    assert!(mail.plain.contains("* <script>alert(1)</script> (router"));
}

#[test]
fn the_html_part_links_each_device_and_has_both_sections() {
    let mut notices = down(2, NoticeState::Firing);
    notices.extend(down(1, NoticeState::Resolved));
    let html = render(&message(notices)).unwrap().html;
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Firing (2)</h3>"), "{html}");
    assert!(html.contains("Resolved (1)</h3>"), "{html}");
    assert_eq!(
        html.matches(
            r#"<a href="https:&#x2f;&#x2f;wardops.bank.example&#x2f;devices&#x2f;e-01-r1">"#
        )
        .count(),
        3,
        "{html}"
    );
}
