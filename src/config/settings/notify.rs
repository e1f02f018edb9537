//! The `notifications:` section: receivers (Alertmanager, webhook, e-mail), the routes
//! that send alerts to the webhook and e-mail ones with their grouping, and how long an
//! undelivered notice is worth replaying (see `crate::notify`).
//!
//! Read in two steps like every section: the shape (`raw`, with every value's place),
//! then the values (`resolve`): URLs, durations, names, matchers, and the secrets, read
//! from the environment or a file named here, never from the YAML itself. Every problem
//! is `file:line:column: notifications…: message`, so `wardops check` points at it.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use crate::config::error::{ConfigError, Location, Place, Spanned};
use crate::config::walk::{Walk, Walker};
use crate::config::yaml::Event;
use crate::config::{duration, secret};
use crate::notify::Secret;

pub(in crate::config) mod raw;
mod receivers;

pub use receivers::{AlertmanagerReceiver, EmailReceiver, SmtpTls, WebhookReceiver};

/// Notifications: none unless receivers are configured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NotifySettings {
    /// The appliance's own address as a NOC reaches it: each notice links its device's
    /// page under it (Alertmanager's `generatorURL`).
    pub external_url: Option<reqwest::Url>,
    /// Undelivered messages older than this (a receiver down for longer) are summarised
    /// per group instead of replayed one by one.
    pub max_replay_age: Duration,
    /// The longest pause between two delivery attempts of a failing message.
    pub max_backoff: Duration,
    pub receivers: Vec<Receiver>,
    /// First match wins; a route with `continue: true` lets the next ones match as well.
    pub routes: Vec<Route>,
}

/// One receiver, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Receiver {
    pub name: String,
    pub kind: ReceiverKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReceiverKind {
    Alertmanager(AlertmanagerReceiver),
    Webhook(WebhookReceiver),
    Email(EmailReceiver),
}

impl ReceiverKind {
    /// `alertmanager`, `webhook` or `email`: the key it was written under.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReceiverKind::Alertmanager(_) => "alertmanager",
            ReceiverKind::Webhook(_) => "webhook",
            ReceiverKind::Email(_) => "email",
        }
    }
}

/// Where alerts of some scope go, grouped how.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Webhook and e-mail receivers (Alertmanager receivers get every alert and group on
    /// their own).
    pub receivers: Vec<String>,
    pub matcher: Matcher,
    /// The notices of one message share these (default `[region, branch]`).
    pub group_by: Vec<GroupBy>,
    /// A new group waits this long for more of its alerts before its first message.
    pub group_wait: Duration,
    /// A group that has sent waits this long before telling of changes again.
    pub group_interval: Duration,
    /// A group with alerts still firing and nothing new sends them again this often.
    pub repeat_interval: Duration,
    pub send_resolved: bool,
    /// Go on to the next routes after this one matched.
    pub continue_matching: bool,
}

/// What a route matches: every field given must match (a list: any of its values); an
/// empty matcher matches every alert.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Matcher {
    pub region: Vec<String>,
    pub branch: Vec<String>,
    pub kind: Vec<String>,
    pub severity: Vec<String>,
    pub condition: Vec<String>,
    pub device: Vec<String>,
    /// The device's inventory labels.
    pub labels: BTreeMap<String, Vec<String>>,
}

/// A field notices are grouped by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupBy {
    Region,
    Branch,
    Kind,
    Severity,
    Condition,
    Device,
    /// `labels.<name>`: one of the device's inventory labels.
    Label(String),
}

impl GroupBy {
    /// As written in `group_by` (and as the key of a message's `group`).
    pub fn name(&self) -> String {
        match self {
            GroupBy::Region => "region".into(),
            GroupBy::Branch => "branch".into(),
            GroupBy::Kind => "kind".into(),
            GroupBy::Severity => "severity".into(),
            GroupBy::Condition => "condition".into(),
            GroupBy::Device => "device".into(),
            GroupBy::Label(l) => format!("labels.{l}"),
        }
    }
}

pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(5);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);
pub const DEFAULT_MAX_REPLAY_AGE: Duration = Duration::from_secs(3600);
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);
pub const DEFAULT_RESEND_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(10);

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// The group fields `group_by` takes besides `labels.<name>`.
const GROUP_FIELDS: &[&str] = &[
    "region",
    "branch",
    "kind",
    "severity",
    "condition",
    "device",
];
const SEVERITIES: &[&str] = &["critical", "warning", "info"];
const CONDITIONS: &[&str] = &["device_down", "flapping", "degraded", "uplink_down"];

pub(super) use raw::RawNotify;

impl RawNotify {
    /// Checks every value; `base` is the settings file's directory (secret files are
    /// relative to it).
    pub(super) fn resolve(
        &self,
        base: &Path,
        path: &Path,
        errors: &mut Vec<ConfigError>,
    ) -> NotifySettings {
        let mut c = Check { path, errors };
        let mut s = NotifySettings {
            external_url: None,
            max_replay_age: DEFAULT_MAX_REPLAY_AGE,
            max_backoff: DEFAULT_MAX_BACKOFF,
            receivers: Vec::new(),
            routes: Vec::new(),
        };
        if let Some(u) = &self.external_url {
            s.external_url = c.url(u, "notifications.external_url");
        }
        c.duration(
            &self.max_replay_age,
            "notifications.max_replay_age",
            (SECOND, 30 * DAY),
            &mut s.max_replay_age,
        );
        c.duration(
            &self.max_backoff,
            "notifications.max_backoff",
            (SECOND, HOUR),
            &mut s.max_backoff,
        );
        let mut names = HashSet::new();
        for (i, r) in self.receivers.iter().enumerate() {
            let at = format!("notifications.receivers[{i}]");
            let Some(written) = r.name.as_ref() else {
                continue;
            };
            let named = names_ok(written.value.trim(), Some(written), &at, &mut names, &mut c);
            if let Some(receiver) = r.resolve(&at, base, &mut c)
                && named
            {
                s.receivers.push(receiver);
            }
        }
        let known: Vec<&str> = self
            .receivers
            .iter()
            .filter_map(|r| r.name.as_ref().map(|n| n.value.as_str()))
            .collect();
        let alertmanagers: HashSet<&str> = self
            .receivers
            .iter()
            .filter(|r| r.is_alertmanager())
            .filter_map(|r| r.name.as_ref().map(|n| n.value.as_str()))
            .collect();
        for (i, r) in self.routes.iter().enumerate() {
            let at = format!("notifications.routes[{i}]");
            if let Some(route) = r.resolve(&at, &known, &alertmanagers, &mut c) {
                s.routes.push(route);
            }
        }
        s
    }
}

/// A receiver's name is unique, and usable in a metric label, a key and a command line.
fn names_ok(
    name: &str,
    written: Option<&Spanned<String>>,
    at: &str,
    names: &mut HashSet<String>,
    c: &mut Check,
) -> bool {
    let Some(written) = written else { return false };
    let bad = name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
    if bad {
        c.error(
            written.at,
            format!("{at}.name: {name:?} must be 1 to 64 letters, digits, '-', '_' or '.'"),
        );
        return false;
    }
    if !names.insert(name.to_string()) {
        c.error(
            written.at,
            format!("{at}.name: a receiver named {name:?} is defined already"),
        );
        return false;
    }
    true
}

/// Where value problems go.
pub(super) struct Check<'p, 'e> {
    path: &'p Path,
    errors: &'e mut Vec<ConfigError>,
}

impl Check<'_, '_> {
    fn error(&mut self, at: Location, message: impl Into<String>) {
        self.errors
            .push(ConfigError::new(Place::at(self.path, at), message));
    }

    /// An http or https URL with a host.
    fn url(&mut self, u: &Spanned<String>, key: &str) -> Option<reqwest::Url> {
        let problem = match reqwest::Url::parse(u.value.trim()) {
            Ok(url) if !matches!(url.scheme(), "http" | "https") => {
                format!("{:?} must be an http:// or https:// URL", u.value)
            }
            Ok(url) if url.host_str().is_none_or(str::is_empty) => {
                format!("{:?} has no host", u.value)
            }
            Ok(url) => return Some(url),
            Err(e) => format!("{:?} is not a URL ({e})", u.value),
        };
        self.error(u.at, format!("{key}: {problem}"));
        None
    }

    /// A duration within `range`, into `out` (kept at its default when absent or bad).
    fn duration(
        &mut self,
        d: &Option<Spanned<String>>,
        key: &str,
        range: (Duration, Duration),
        out: &mut Duration,
    ) {
        let Some(d) = d else { return };
        match duration::parse(&d.value) {
            Ok(v) if v < range.0 || v > range.1 => self.error(
                d.at,
                format!(
                    "{key}: {} is out of range ({} to {})",
                    d.value,
                    duration::format(range.0),
                    duration::format(range.1)
                ),
            ),
            Ok(v) => *out = v,
            Err(e) => self.error(d.at, format!("{key}: {e}")),
        }
    }

    /// The secret named by `env` or `file` ([`crate::config::secret::read`]), its
    /// problem reported.
    fn secret(
        &mut self,
        env: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        keys: &(String, String),
        base: &Path,
    ) -> Option<Secret> {
        match secret::read(env.as_ref(), file.as_ref(), (&keys.0, &keys.1), base) {
            Ok(value) => value.map(Secret::new),
            Err((at, message)) => {
                self.error(at, message);
                None
            }
        }
    }
}

impl raw::RawReceiver {
    fn is_alertmanager(&self) -> bool {
        matches!(self.kinds.as_slice(), [raw::RawKind::Alertmanager(_)])
    }

    fn resolve(&self, at: &str, base: &Path, c: &mut Check) -> Option<Receiver> {
        let name = self.name.as_ref()?.value.trim().to_string();
        let at = format!("{at} ({name})");
        let kind = match self.kinds.as_slice() {
            [kind] => kind,
            [] | [_, _, ..] => {
                c.error(
                    self.at,
                    format!("{at}: give exactly one of alertmanager, webhook or email"),
                );
                return None;
            }
        };
        let kind = match kind {
            raw::RawKind::Alertmanager(am) => {
                let mut r = AlertmanagerReceiver {
                    urls: Vec::new(),
                    resend_interval: DEFAULT_RESEND_INTERVAL,
                    timeout: DEFAULT_HTTP_TIMEOUT,
                };
                let key = format!("{at}.alertmanager.urls");
                if am.urls.is_empty() {
                    c.error(am.at, format!("{key}: at least one URL"));
                }
                let n = am.urls.len();
                r.urls = am.urls.iter().filter_map(|u| c.url(u, &key)).collect();
                c.duration(
                    &am.resend_interval,
                    &format!("{at}.alertmanager.resend_interval"),
                    (SECOND, HOUR),
                    &mut r.resend_interval,
                );
                c.duration(
                    &am.timeout,
                    &format!("{at}.alertmanager.timeout"),
                    (Duration::from_millis(100), Duration::from_secs(300)),
                    &mut r.timeout,
                );
                if r.urls.len() != n || n == 0 {
                    return None;
                }
                ReceiverKind::Alertmanager(r)
            }
            raw::RawKind::Webhook(w) => {
                let url = c.url(w.url.as_ref()?, &format!("{at}.webhook.url"));
                let keys = (
                    format!("{at}.webhook.secret_env"),
                    format!("{at}.webhook.secret_file"),
                );
                let secret = c.secret(&w.secret_env, &w.secret_file, &keys, base);
                let mut timeout = DEFAULT_HTTP_TIMEOUT;
                c.duration(
                    &w.timeout,
                    &format!("{at}.webhook.timeout"),
                    (Duration::from_millis(100), Duration::from_secs(300)),
                    &mut timeout,
                );
                let named_but_unread =
                    (w.secret_env.is_some() || w.secret_file.is_some()) && secret.is_none();
                if named_but_unread {
                    return None;
                }
                ReceiverKind::Webhook(WebhookReceiver {
                    url: url?,
                    secret,
                    timeout,
                })
            }
            raw::RawKind::Email(e) => ReceiverKind::Email(e.resolve(&at, base, c)?),
        };
        Some(Receiver { name, kind })
    }
}

impl raw::RawEmail {
    fn resolve(&self, at: &str, base: &Path, c: &mut Check) -> Option<EmailReceiver> {
        let mut ok = true;
        let tls = match self.tls.as_ref().map(|t| (t.value.trim(), t.at)) {
            None | Some(("starttls", _)) => SmtpTls::StartTls,
            Some(("tls", _)) => SmtpTls::Tls,
            Some(("none", _)) => SmtpTls::None,
            Some((other, place)) => {
                c.error(
                    place,
                    format!("{at}.email.smtp.tls: {other:?} is not one of starttls, tls, none"),
                );
                ok = false;
                SmtpTls::StartTls
            }
        };
        let host = self
            .host
            .as_ref()
            .map(|h| h.value.trim().to_string())
            .unwrap_or_default();
        if host.is_empty() || host.chars().any(|ch| ch.is_control() || ch == ' ') {
            c.error(
                self.host.as_ref().map_or(self.at, |h| h.at),
                format!("{at}.email.smtp.host: a host name or address"),
            );
            ok = false;
        }
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback());
        if tls == SmtpTls::None && !host.is_empty() && !loopback {
            c.error(
                self.tls.as_ref().map_or(self.at, |t| t.at),
                format!(
                    "{at}.email.smtp.tls: none sends mail (and a password) in the clear: only \
                     for a relay on this host (localhost, 127.0.0.1, ::1); use starttls or tls"
                ),
            );
            ok = false;
        }
        let port = match &self.port {
            Some(p) if p.value == 0 => {
                c.error(p.at, format!("{at}.email.smtp.port: 1 to 65535"));
                ok = false;
                0
            }
            Some(p) => p.value,
            None => match tls {
                SmtpTls::StartTls => 587,
                SmtpTls::Tls => 465,
                SmtpTls::None => 25,
            },
        };
        let keys = (
            format!("{at}.email.password_env"),
            format!("{at}.email.password_file"),
        );
        let password = c.secret(&self.password_env, &self.password_file, &keys, base);
        if (self.password_env.is_some() || self.password_file.is_some()) && password.is_none() {
            ok = false;
        }
        let username = self.username.as_ref().map(|u| u.value.trim().to_string());
        if username.is_some() != password.is_some() && ok {
            c.error(
                self.at,
                format!(
                    "{at}.email: username and password_env/password_file go together (or neither)"
                ),
            );
            ok = false;
        }
        // As the e-mail receiver reads them (lettre's mailbox: `a@b` or `Name <a@b>`), so
        // that nothing `check` accepts makes `serve` fail.
        let address = |a: &str| a.trim().parse::<lettre::message::Mailbox>().is_ok();
        let from = self.from.as_ref().map(|f| f.value.trim().to_string());
        match (&from, &self.from) {
            (Some(f), Some(_)) if address(f) => {}
            (_, written) => {
                c.error(
                    written.as_ref().map_or(self.at, |f| f.at),
                    format!("{at}.email.from: a mail address such as wardops@bank.example"),
                );
                ok = false;
            }
        }
        if self.to.is_empty() {
            c.error(self.at, format!("{at}.email.to: at least one mail address"));
            ok = false;
        }
        for t in &self.to {
            if !address(&t.value) {
                c.error(
                    t.at,
                    format!("{at}.email.to: {:?} is not a mail address", t.value),
                );
                ok = false;
            }
        }
        let mut timeout = DEFAULT_SMTP_TIMEOUT;
        c.duration(
            &self.timeout,
            &format!("{at}.email.timeout"),
            (Duration::from_millis(100), Duration::from_secs(300)),
            &mut timeout,
        );
        ok.then(|| EmailReceiver {
            host,
            port,
            tls,
            username,
            password,
            from: from.unwrap_or_default(),
            to: self.to.iter().map(|t| t.value.trim().to_string()).collect(),
            timeout,
        })
    }
}

impl raw::RawRoute {
    fn resolve(
        &self,
        at: &str,
        known: &[&str],
        alertmanagers: &HashSet<&str>,
        c: &mut Check,
    ) -> Option<Route> {
        let mut ok = true;
        if self.receivers.is_empty() {
            c.error(self.at, format!("{at}.receivers: at least one receiver"));
            ok = false;
        }
        for r in &self.receivers {
            let name = r.value.trim();
            if alertmanagers.contains(name) {
                c.error(
                    r.at,
                    format!(
                        "{at}.receivers: {name:?} is an Alertmanager receiver: it gets every \
                         alert and groups on its own; routes are for webhook and email receivers"
                    ),
                );
                ok = false;
            } else if !known.contains(&name) {
                let hint = crate::config::error::unknown_key(None, name, known);
                let hint = hint.trim_start_matches("unknown key ");
                c.error(r.at, format!("{at}.receivers: unknown receiver {hint}"));
                ok = false;
            }
        }
        let mut route = Route {
            receivers: self
                .receivers
                .iter()
                .map(|r| r.value.trim().into())
                .collect(),
            matcher: Matcher::default(),
            group_by: vec![GroupBy::Region, GroupBy::Branch],
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            send_resolved: self.send_resolved.as_ref().is_none_or(|s| s.value),
            continue_matching: self.continue_matching.as_ref().is_some_and(|s| s.value),
        };
        if let Some(group_by) = &self.group_by {
            route.group_by.clear();
            for g in group_by {
                let v = g.value.trim();
                let field = match v {
                    "region" => Some(GroupBy::Region),
                    "branch" => Some(GroupBy::Branch),
                    "kind" => Some(GroupBy::Kind),
                    "severity" => Some(GroupBy::Severity),
                    "condition" => Some(GroupBy::Condition),
                    "device" => Some(GroupBy::Device),
                    _ => v
                        .strip_prefix("labels.")
                        .filter(|l| !l.is_empty())
                        .map(|l| GroupBy::Label(l.to_string())),
                };
                match field {
                    Some(f) if !route.group_by.contains(&f) => route.group_by.push(f),
                    Some(_) => {}
                    None => {
                        let hint = crate::config::error::unknown_key(None, v, GROUP_FIELDS);
                        let hint = hint.trim_start_matches("unknown key ");
                        c.error(
                            g.at,
                            format!("{at}.group_by: unknown field {hint} or labels.<name>"),
                        );
                        ok = false;
                    }
                }
            }
        }
        let timers = [
            (&self.group_wait, "group_wait", Duration::ZERO, HOUR),
            (&self.group_interval, "group_interval", Duration::ZERO, DAY),
            (&self.repeat_interval, "repeat_interval", SECOND, 30 * DAY),
        ];
        for (value, key, low, high) in timers {
            let out = match key {
                "group_wait" => &mut route.group_wait,
                "group_interval" => &mut route.group_interval,
                _ => &mut route.repeat_interval,
            };
            let before = c.errors.len();
            c.duration(value, &format!("{at}.{key}"), (low, high), out);
            ok &= c.errors.len() == before;
        }
        if let Some(m) = &self.matcher {
            let before = c.errors.len();
            route.matcher = m.resolve(&format!("{at}.match"), c);
            ok &= c.errors.len() == before;
        }
        ok.then_some(route)
    }
}

impl raw::RawMatch {
    fn resolve(&self, at: &str, c: &mut Check) -> Matcher {
        let values = |c: &mut Check, key: &str, list: &[Spanned<String>], known: &[&str]| {
            let mut out = Vec::new();
            for v in list {
                let value = v.value.trim();
                if value.is_empty() {
                    c.error(v.at, format!("{at}.{key}: an empty value matches nothing"));
                } else if !known.is_empty() && !known.contains(&value) {
                    c.error(
                        v.at,
                        format!("{at}.{key}: {value:?} is not one of {}", known.join(", ")),
                    );
                } else {
                    out.push(value.to_string());
                }
            }
            out
        };
        let mut m = Matcher {
            region: values(c, "region", &self.region, &[]),
            branch: values(c, "branch", &self.branch, &[]),
            kind: values(c, "kind", &self.kind, &[]),
            severity: values(c, "severity", &self.severity, SEVERITIES),
            condition: values(c, "condition", &self.condition, CONDITIONS),
            device: values(c, "device", &self.device, &[]),
            labels: BTreeMap::new(),
        };
        for (name, list) in &self.labels {
            if name.value.trim().is_empty() {
                c.error(name.at, format!("{at}.labels: a label name is empty"));
                continue;
            }
            let key = format!("labels.{}", name.value);
            let v = values(c, &key, list, &[]);
            m.labels.insert(name.value.clone(), v);
        }
        m
    }
}

/// Reads a single value or a list of single values as a list.
pub(super) fn one_or_many(w: &mut Walker<'_, '_>, key: &str) -> Walk<Vec<Spanned<String>>> {
    let mut out = Vec::new();
    match w.next()? {
        Event::Scalar(s) if s.is_null() => {}
        Event::Scalar(s) => out.push(Spanned {
            value: s.value.into_owned(),
            at: s.at,
        }),
        Event::SequenceStart(_) => loop {
            match w.next()? {
                Event::SequenceEnd => break,
                Event::Scalar(s) => out.push(Spanned {
                    value: s.value.into_owned(),
                    at: s.at,
                }),
                other => {
                    w.error(
                        start(&other),
                        format!("{key}: expected single values, not a list or mapping"),
                    );
                    w.skip(other)?;
                }
            }
        },
        other => {
            w.error(
                start(&other),
                format!("{key}: expected a value or a list of values"),
            );
            w.skip(other)?;
        }
    }
    Ok(out)
}

fn start(event: &Event<'_>) -> Location {
    match event {
        Event::MappingStart(at) | Event::SequenceStart(at) => *at,
        Event::Scalar(s) => s.at,
        _ => Location { line: 1, column: 1 },
    }
}

#[cfg(test)]
mod tests;
