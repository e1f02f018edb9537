//! The mail as built; sending it to a real SMTP server is in tests/notify_email.rs.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::notify::fixture::notice;
use crate::notify::message::NoticeState;

fn config() -> EmailReceiver {
    EmailReceiver {
        host: "127.0.0.1".into(),
        port: 2525,
        tls: SmtpTls::None,
        username: Some("wardops".into()),
        password: Some(Secret::new("hunter2".into())),
        from: "wardops <wardops@bank.example>".into(),
        to: vec!["noc@bank.example".into(), "Duty <duty@bank.example>".into()],
        timeout: Duration::from_secs(5),
    }
}

fn message() -> Message {
    Message {
        receiver: "noc mail".into(),
        idempotency_key: "wardops-noc mail-42".into(),
        group: BTreeMap::new(),
        notices: vec![notice(NoticeState::Firing)],
        summarised: 0,
        test: false,
    }
}

#[test]
fn the_mail_carries_its_key_its_subject_and_both_parts() {
    let email = Email::new("noc mail", &config()).unwrap();
    let raw = String::from_utf8(email.mail(&message()).unwrap().formatted()).unwrap();
    let head = &raw[..raw.find("\r\n\r\n").unwrap()];
    assert!(
        head.contains("From: wardops <wardops@bank.example>"),
        "{head}"
    );
    assert!(
        head.contains("To: noc@bank.example, Duty <duty@bank.example>"),
        "{head}"
    );
    assert!(
        head.contains("Subject: [wardops] east/e-01: 1 device down (e-01-r1)"),
        "{head}"
    );
    assert!(
        head.contains("Message-ID: <wardops-noc-mail-42@bank.example>"),
        "{head}"
    );
    assert!(
        head.contains("X-Wardops-Idempotency-Key: wardops-noc mail-42"),
        "{head}"
    );
    assert!(head.contains("multipart/alternative"), "{head}");
    assert!(
        raw.contains("Content-Type: text/plain; charset=utf-8"),
        "{raw}"
    );
    assert!(
        raw.contains("Content-Type: text/html; charset=utf-8"),
        "{raw}"
    );
    assert!(!raw.contains("hunter2"));
}

#[test]
fn the_same_message_is_the_same_mail_for_a_mail_client() {
    let email = Email::new("noc mail", &config()).unwrap();
    let id = |m: &Message| {
        let mail = email.mail(m).unwrap();
        mail.headers().get_raw("Message-ID").unwrap().to_string()
    };
    let mut other = message();
    other.idempotency_key = "wardops-noc mail-43".into();
    assert_eq!(id(&message()), id(&message()));
    assert_ne!(id(&message()), id(&other));
}

#[test]
fn bad_addresses_are_refused_when_the_receiver_is_built() {
    let mut bad = config();
    bad.from = "not an address".into();
    let e = Email::new("noc-mail", &bad).err().unwrap().to_string();
    assert!(e.contains("from \"not an address\""), "{e}");
    let mut bad = config();
    bad.to = vec!["noc@bank.example".into(), "@".into()];
    let e = Email::new("noc-mail", &bad).err().unwrap().to_string();
    assert!(e.contains("to \"@\""), "{e}");
    let mut none = config();
    none.to.clear();
    assert!(Email::new("noc-mail", &none).is_err());
}

#[test]
fn the_secret_never_shows_in_debug_output() {
    let text = format!("{:?}", config());
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn an_smtp_server_that_is_not_there_is_retried() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = config();
    c.port = closed.local_addr().unwrap().port();
    c.username = None;
    drop(closed);
    let email = Email::new("noc-mail", &c).unwrap();
    let result = email.deliver(&message()).await;
    assert!(matches!(result, Err(DeliveryError::Retry(_))), "{result:?}");
}
