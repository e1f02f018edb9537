use std::time::Duration;

use super::*;
use crate::config::settings::tests::parse;

#[test]
fn no_section_is_no_receivers() {
    let s = parse("").unwrap().notifications;
    assert!(s.receivers.is_empty() && s.routes.is_empty());
    assert_eq!(s.max_replay_age, DEFAULT_MAX_REPLAY_AGE);
    assert!(
        parse("notifications:\n")
            .unwrap()
            .notifications
            .receivers
            .is_empty()
    );
}

#[test]
fn the_example_of_the_design_reads_with_its_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook.secret"), "s3cret\n").unwrap();
    let text = r#"
notifications:
  external_url: https://wardops.bank.example
  max_replay_age: 30m
  receivers:
    - name: noc-am
      alertmanager:
        urls: [http://127.0.0.1:9093, http://127.0.0.1:9094]
    - name: noc-hook
      webhook:
        url: https://hooks.example/wardops
        secret_file: hook.secret
        timeout: 2s
    - name: noc-mail
      email:
        smtp: { host: 127.0.0.1, port: 2525, tls: none }
        from: wardops@bank.example
        to: noc@bank.example
  routes:
    - receivers: [noc-hook, noc-mail]
      match: { region: east, severity: critical, kind: [router, switch], labels: { tier: gold } }
      group_wait: 0s
      send_resolved: false
      continue: true
    - receivers: noc-hook
"#;
    let path = dir.path().join("w.yaml");
    let env = crate::config::Env {
        listen: None,
        database_url: None,
        users_file: None,
        data_dir: None,
        cluster: Default::default(),
    };
    let s = crate::config::Settings::parse(&path, text, &env)
        .unwrap()
        .notifications;
    assert_eq!(
        s.external_url.as_ref().unwrap().as_str(),
        "https://wardops.bank.example/"
    );
    assert_eq!(s.max_replay_age, Duration::from_secs(1800));
    let names: Vec<_> = s.receivers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["noc-am", "noc-hook", "noc-mail"]);
    let ReceiverKind::Alertmanager(am) = &s.receivers[0].kind else {
        panic!()
    };
    assert_eq!(am.urls.len(), 2);
    assert_eq!(am.resend_interval, DEFAULT_RESEND_INTERVAL);
    let ReceiverKind::Webhook(hook) = &s.receivers[1].kind else {
        panic!()
    };
    assert_eq!(hook.secret.as_ref().unwrap().expose(), "s3cret");
    assert_eq!(hook.timeout, Duration::from_secs(2));
    let ReceiverKind::Email(mail) = &s.receivers[2].kind else {
        panic!()
    };
    assert_eq!((mail.port, mail.tls), (2525, SmtpTls::None));
    assert_eq!(mail.to, ["noc@bank.example"]);
    let r = &s.routes[0];
    assert_eq!(r.matcher.kind, ["router", "switch"]);
    assert_eq!(r.matcher.labels["tier"], ["gold"]);
    assert_eq!(r.group_wait, Duration::ZERO);
    assert!(!r.send_resolved && r.continue_matching);
    let d = &s.routes[1];
    assert_eq!(d.group_by, [GroupBy::Region, GroupBy::Branch]);
    assert_eq!(
        (d.group_wait, d.group_interval, d.repeat_interval),
        (
            DEFAULT_GROUP_WAIT,
            DEFAULT_GROUP_INTERVAL,
            DEFAULT_REPEAT_INTERVAL
        )
    );
    assert!(d.send_resolved && !d.continue_matching);
    // The secret never reaches a debug print.
    assert!(!format!("{s:?}").contains("s3cret"));
}

#[test]
fn bad_receivers_and_routes_are_errors_at_their_place() {
    let text = "notifications:
  receivers:
    - name: hook
      webhook: { url: ftp://x }
    - name: hook
      webhook: { url: http://127.0.0.1:1/ }
    - name: am
      alertmanager: { urls: [] }
    - name: both
      webhook: { url: http://a/ }
      email: { smtp: { host: a }, from: a@b, to: c@d }
    - name: mail
      email: { smtp: { host: smtp.bank.example, tls: none }, from: nobody, to: [] }
  routes:
    - receivers: [hokk]
      group_by: [brnach, labels.tier]
      group_wait: 5
      match: { severity: fatal, colour: red }
";
    let errors = parse(text).unwrap_err();
    let expected = [
        "w.yaml:18:33: match: unknown key \"colour\" (known keys: region, branch, kind, severity, condition, device, labels)",
    ];
    assert_eq!(errors, expected.join("\n"), "shape first");
    let errors = parse(&text.replace(", colour: red", "")).unwrap_err();
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(
        lines,
        [
            "w.yaml:4:23: notifications.receivers[0] (hook).webhook.url: \"ftp://x\" must be an http:// or https:// URL",
            "w.yaml:5:13: notifications.receivers[1].name: a receiver named \"hook\" is defined already",
            "w.yaml:8:21: notifications.receivers[2] (am).alertmanager.urls: at least one URL",
            "w.yaml:9:7: notifications.receivers[3] (both): give exactly one of alertmanager, webhook or email",
            "w.yaml:13:14: notifications.receivers[4] (mail).email.to: at least one mail address",
            "w.yaml:13:54: notifications.receivers[4] (mail).email.smtp.tls: none sends mail (and a password) in the clear: only for a relay on this host (localhost, 127.0.0.1, ::1); use starttls or tls",
            "w.yaml:13:68: notifications.receivers[4] (mail).email.from: a mail address such as wardops@bank.example",
            "w.yaml:15:19: notifications.routes[0].receivers: unknown receiver \"hokk\" (did you mean \"hook\"?)",
            "w.yaml:16:18: notifications.routes[0].group_by: unknown field \"brnach\" (did you mean \"branch\"?) or labels.<name>",
            "w.yaml:17:19: notifications.routes[0].group_wait: duration \"5\" needs a unit (ms, s, m or h)",
            "w.yaml:18:26: notifications.routes[0].match.severity: \"fatal\" is not one of critical, warning, info",
        ]
    );
}

#[test]
fn secrets_come_from_the_environment_or_a_file_never_both() {
    let errors = parse(
        "notifications:
  receivers:
    - name: h
      webhook: { url: http://127.0.0.1/, secret_env: WARDOPS_TEST_SURELY_UNSET_VAR }
    - name: g
      webhook: { url: http://127.0.0.1/, secret_env: A, secret_file: /nonexistent }
    - name: f
      webhook: { url: http://127.0.0.1/, secret_file: /nonexistent/secret }
",
    )
    .unwrap_err();
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(lines.len(), 3, "{errors}");
    assert!(lines[0].starts_with("w.yaml:4:54: notifications.receivers[0] (h).webhook.secret_env: the environment variable WARDOPS_TEST_SURELY_UNSET_VAR is not set"), "{errors}");
    assert!(lines[1].starts_with("w.yaml:6:70: notifications.receivers[1] (g).webhook.secret_file: give secret_env or secret_file, not both"), "{errors}");
    assert!(lines[2].starts_with("w.yaml:8:55: notifications.receivers[2] (f).webhook.secret_file: cannot read /nonexistent/secret"), "{errors}");
}

#[test]
fn routes_do_not_name_alertmanager_receivers() {
    let errors = parse(
        "notifications:
  receivers:
    - { name: am, alertmanager: { urls: http://127.0.0.1:9093 } }
  routes:
    - receivers: am
",
    )
    .unwrap_err();
    assert!(
        errors.starts_with(
            "w.yaml:5:18: notifications.routes[0].receivers: \"am\" is an Alertmanager receiver"
        ),
        "{errors}"
    );
}

#[test]
fn mail_addresses_are_read_as_the_mail_receiver_reads_them() {
    let text = |to: &str| {
        format!(
            "notifications:\n  receivers:\n    - name: m\n      email: {{ smtp: {{ host: localhost, tls: none }}, from: 'wardops <w@bank.example>', to: {to} }}\n"
        )
    };
    assert!(parse(&text("[noc@bank.example, 'NOC <noc2@bank.example>']")).is_ok());
    for bad in ["a@b@c", "'Name <x'"] {
        let errors = parse(&text(bad)).unwrap_err();
        assert!(errors.contains("is not a mail address"), "{bad}: {errors}");
    }
}
