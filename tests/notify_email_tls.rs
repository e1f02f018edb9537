//! The e-mail receiver over STARTTLS and over TLS to a real SMTP server (aiosmtpd) with a
//! certificate from a CA made here, trusted the way an operator would trust a private CA:
//! `SSL_CERT_FILE`. One test in its own binary, because it sets that variable for the
//! process before any other thread exists.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use wardops::config::settings::notify::{EmailReceiver, SmtpTls};
use wardops::notify::email::Email;
use wardops::notify::{Deliver, DeliveryError, Message, Secret};

use support::smtp::Smtp;

/// A CA and a certificate it signed for 127.0.0.1 and localhost, in `dir`.
fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=wardops test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
}

fn message(key: &str) -> Message {
    Message {
        receiver: "noc-mail".into(),
        idempotency_key: key.into(),
        group: BTreeMap::new(),
        notices: Vec::new(),
        summarised: 0,
        test: true,
    }
}

fn receiver(port: u16, tls: SmtpTls) -> EmailReceiver {
    EmailReceiver {
        host: "127.0.0.1".into(),
        port,
        tls,
        username: Some("wardops".into()),
        password: Some(Secret::new("s3cret".into())),
        from: "wardops@bank.example".into(),
        to: vec!["noc@bank.example".into()],
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn starttls_and_tls_deliver_encrypted_and_verify_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());

    // Before the CA is trusted: the certificate is refused, nothing is sent.
    let starttls = Smtp::start_with(&["--starttls", cert, key, "--auth", "wardops:s3cret"]);
    let untrusted = Email::new("noc-mail", &receiver(starttls.port, SmtpTls::StartTls)).unwrap();
    let result = untrusted.deliver(&message("wardops-noc-mail-0")).await;
    assert!(matches!(result, Err(DeliveryError::Retry(_))), "{result:?}");

    // SAFETY: the only test of this binary, before it starts any thread of its own; the
    // tokio test runtime is current-thread.
    unsafe { std::env::set_var("SSL_CERT_FILE", dir.path().join("ca.pem")) };

    let email = Email::new("noc-mail", &receiver(starttls.port, SmtpTls::StartTls)).unwrap();
    email.deliver(&message("wardops-noc-mail-1")).await.unwrap();
    let mails = starttls.wait_mails(1, Duration::from_secs(10));
    assert!(mails[0].tls, "delivered after STARTTLS");
    assert_eq!(mails[0].login.as_deref(), Some("wardops"));
    assert_eq!(
        mails[0].header("Subject"),
        Some("[wardops] test message to receiver noc-mail")
    );

    let tls = Smtp::start_with(&["--tls", cert, key, "--auth", "wardops:s3cret"]);
    let email = Email::new("noc-mail", &receiver(tls.port, SmtpTls::Tls)).unwrap();
    email.deliver(&message("wardops-noc-mail-2")).await.unwrap();
    let mails = tls.wait_mails(1, Duration::from_secs(10));
    assert!(mails[0].tls, "delivered over TLS");
    assert_eq!(mails[0].login.as_deref(), Some("wardops"));

    // The name must match the certificate: a host it was not made for is refused.
    let mut wrong_name = receiver(tls.port, SmtpTls::Tls);
    wrong_name.host = "127.0.0.2".into();
    let email = Email::new("noc-mail", &wrong_name).unwrap();
    let result = email.deliver(&message("wardops-noc-mail-3")).await;
    assert!(matches!(result, Err(DeliveryError::Retry(_))), "{result:?}");
    assert_eq!(tls.mails().len(), 1);
}
