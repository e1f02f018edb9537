//! The e-mail receiver against a real SMTP server (aiosmtpd on loopback): one mail per
//! message with its headers and both parts, authentication, and what is retried.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use wardops::config::settings::notify::{EmailReceiver, SmtpTls};
use wardops::notify::email::Email;
use wardops::notify::message::NoticeState;
use wardops::notify::{Deliver, DeliveryError, Message, Notice, Secret};

use support::smtp::Smtp;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn receiver(smtp: &Smtp) -> EmailReceiver {
    EmailReceiver {
        host: "127.0.0.1".into(),
        port: smtp.port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "wardops <wardops@bank.example>".into(),
        to: vec!["noc@bank.example".into(), "duty@bank.example".into()],
        timeout: Duration::from_secs(10),
    }
}

/// `count` devices of east/e-01 down (or back up) as one message.
fn branch(count: usize, state: NoticeState, key: &str) -> Message {
    let notices = (0..count)
        .map(|i| Notice {
            outbox_id: i as i64 + 1,
            state,
            alert_id: i as i64 + 1,
            condition: "device_down".into(),
            severity: "critical".into(),
            device: format!("e-01-atm-{i}"),
            address: format!("127.77.0.{}", i + 1),
            region: "east".into(),
            branch: "e-01".into(),
            kind: "atm".into(),
            labels: BTreeMap::from([("vendor".to_string(), "R&D <Ltd>".to_string())]),
            summary: format!("e-01-atm-{i} is down"),
            opened_at: t("2026-12-02T06:49:30Z"),
            resolved_at: (state == NoticeState::Resolved).then(|| t("2026-12-02T07:10:00Z")),
            down_since: Some(t("2026-12-02T06:49:22Z")),
            unreachable_behind: 0,
            url: Some(format!("https://wardops.bank.example/devices/e-01-atm-{i}")),
        })
        .collect();
    Message {
        receiver: "noc-mail".into(),
        idempotency_key: key.into(),
        group: BTreeMap::from([
            ("region".to_string(), "east".to_string()),
            ("branch".to_string(), "e-01".to_string()),
        ]),
        notices,
        summarised: 0,
        test: false,
    }
}

#[tokio::test]
async fn one_mail_for_a_branch_outage_and_one_for_its_resolution() {
    let smtp = Smtp::start();
    let email = Email::new("noc-mail", &receiver(&smtp)).unwrap();
    email
        .deliver(&branch(7, NoticeState::Firing, "wardops-noc-mail-1"))
        .await
        .unwrap();
    let mails = smtp.wait_mails(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1, "one mail for seven devices");
    let down = &mails[0];
    assert_eq!(down.mail_from, "wardops@bank.example");
    assert_eq!(down.rcpt_tos, ["noc@bank.example", "duty@bank.example"]);
    assert_eq!(
        down.header("Subject"),
        Some("[wardops] east/e-01: 7 devices down")
    );
    assert_eq!(down.header("From"), Some("wardops <wardops@bank.example>"));
    assert_eq!(
        down.header("To"),
        Some("noc@bank.example, duty@bank.example")
    );
    assert_eq!(
        down.header("Message-ID"),
        Some("<wardops-noc-mail-1@bank.example>")
    );
    assert_eq!(
        down.header("X-Wardops-Idempotency-Key"),
        Some("wardops-noc-mail-1")
    );
    assert!(down.header("Date").is_some());
    assert_eq!(down.content_type, "multipart/alternative");
    let plain = down.part("text/plain").expect("a plain part");
    let html = down.part("text/html").expect("an HTML part");
    for i in 0..7 {
        assert!(
            plain.contains(&format!("* e-01-atm-{i} (atm, 127.77.0.{})", i + 1)),
            "{plain}"
        );
        assert!(html.contains(&format!(">e-01-atm-{i}</a>")), "{html}");
    }
    assert!(plain.contains("labels: vendor=R&D <Ltd>"), "{plain}");
    assert!(html.contains("vendor=R&amp;D &lt;Ltd&gt;"), "{html}");
    assert!(!html.contains("<Ltd>"), "{html}");

    email
        .deliver(&branch(7, NoticeState::Resolved, "wardops-noc-mail-2"))
        .await
        .unwrap();
    let mails = smtp.wait_mails(2, Duration::from_secs(10));
    assert_eq!(mails.len(), 2);
    let up = &mails[1];
    assert_eq!(
        up.header("Subject"),
        Some("[wardops] east/e-01: resolved, 7 devices up again")
    );
    assert_eq!(
        up.header("Message-ID"),
        Some("<wardops-noc-mail-2@bank.example>")
    );
    let plain = up.part("text/plain").unwrap();
    assert!(plain.contains("RESOLVED (7)"), "{plain}");
    assert!(
        plain.contains("resolved at 2026-12-02T07:10:00.000Z"),
        "{plain}"
    );
    assert!(!plain.contains("FIRING"), "{plain}");
}

#[tokio::test]
async fn a_login_is_sent_and_a_refused_login_waits_to_be_fixed() {
    let smtp = Smtp::start_with(&["--auth", "wardops:s3cret"]);
    let mut config = receiver(&smtp);
    config.username = Some("wardops".into());
    config.password = Some(Secret::new("wrong".into()));
    let wrong = Email::new("noc-mail", &config).unwrap();
    let m = branch(1, NoticeState::Firing, "wardops-noc-mail-1");
    let result = wrong.deliver(&m).await;
    let Err(DeliveryError::Retry(why)) = &result else {
        panic!(
            "a refused login is retried (the configuration is fixed, then the mail goes): {result:?}"
        )
    };
    assert!(why.contains("535"), "{why}");
    assert!(!why.contains("wrong"), "{why}");
    config.password = Some(Secret::new("s3cret".into()));
    let right = Email::new("noc-mail", &config).unwrap();
    right.deliver(&m).await.unwrap();
    let mails = smtp.wait_mails(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].login.as_deref(), Some("wardops"));
}

#[tokio::test]
async fn without_a_login_a_server_that_requires_one_is_retried() {
    let smtp = Smtp::start_with(&["--auth", "wardops:s3cret"]);
    let email = Email::new("noc-mail", &receiver(&smtp)).unwrap();
    let result = email
        .deliver(&branch(1, NoticeState::Firing, "wardops-noc-mail-1"))
        .await;
    assert!(matches!(result, Err(DeliveryError::Retry(_))), "{result:?}");
    assert!(smtp.mails().is_empty());
}

#[tokio::test]
async fn starttls_is_never_downgraded_to_a_clear_connection() {
    let smtp = Smtp::start();
    let mut config = receiver(&smtp);
    config.tls = SmtpTls::StartTls;
    config.username = Some("wardops".into());
    config.password = Some(Secret::new("s3cret".into()));
    let email = Email::new("noc-mail", &config).unwrap();
    let result = email
        .deliver(&branch(1, NoticeState::Firing, "wardops-noc-mail-1"))
        .await;
    assert!(matches!(result, Err(DeliveryError::Retry(_))), "{result:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(smtp.mails().is_empty(), "nothing was sent in the clear");
}

#[tokio::test]
async fn a_refused_recipient_is_a_permanent_failure() {
    let smtp = Smtp::start();
    let mut config = receiver(&smtp);
    config.to = vec!["refused@bank.example".into()];
    let email = Email::new("noc-mail", &config).unwrap();
    let result = email
        .deliver(&branch(1, NoticeState::Firing, "wardops-noc-mail-1"))
        .await;
    let Err(DeliveryError::Permanent(why)) = &result else {
        panic!("550 is not retried: {result:?}")
    };
    assert!(why.contains("550"), "{why}");
    assert!(smtp.mails().is_empty());
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_retry_within_the_timeout() {
    // Accepts the connection, never says hello.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = EmailReceiver {
        port: silent.local_addr().unwrap().port(),
        ..receiver_at(0)
    };
    config.timeout = Duration::from_millis(500);
    let email = Email::new("noc-mail", &config).unwrap();
    let started = std::time::Instant::now();
    let result = email
        .deliver(&branch(1, NoticeState::Firing, "wardops-noc-mail-1"))
        .await;
    assert!(matches!(result, Err(DeliveryError::Retry(_))), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

fn receiver_at(port: u16) -> EmailReceiver {
    EmailReceiver {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "wardops@bank.example".into(),
        to: vec!["noc@bank.example".into()],
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn names_in_any_script_reach_the_reader_as_written() {
    let smtp = Smtp::start();
    let email = Email::new("noc-mail", &receiver(&smtp)).unwrap();
    let mut m = branch(2, NoticeState::Firing, "wardops-noc-mail-7");
    for (i, n) in m.notices.iter_mut().enumerate() {
        n.region = "თბილისი".into();
        n.branch = "ვაკე".into();
        n.device = format!("ვაკე-ბანკომატი-{i}");
        n.summary = format!(
            "{} არ პასუხობს — a very long line of text that goes on and on well past the seventy-eight characters a mail line should have",
            n.device
        );
    }
    email.deliver(&m).await.unwrap();
    let mails = smtp.wait_mails(1, Duration::from_secs(10));
    assert_eq!(
        mails[0].header("Subject"),
        Some("[wardops] თბილისი/ვაკე: 2 devices down")
    );
    let plain = mails[0].part("text/plain").unwrap();
    assert!(plain.contains("* ვაკე-ბანკომატი-1 (atm, 127.77.0.2) in თბილისი/ვაკე: ვაკე-ბანკომატი-1 არ პასუხობს — a very long line"), "{plain}");
    assert!(
        mails[0]
            .part("text/html")
            .unwrap()
            .contains(">ვაკე-ბანკომატი-0</a>")
    );
}
