//! `notifications:` as written: every key with its place, nothing checked but the shape
//! (unknown keys, a list where a value belongs); the values are checked by `resolve`.

use crate::config::error::{Location, Spanned};
use crate::config::walk::{Walk, Walker};
use crate::config::yaml::Event;

use super::one_or_many;

pub(in crate::config) const NOTIFY_KEYS: &[&str] = &[
    "external_url",
    "max_replay_age",
    "max_backoff",
    "receivers",
    "routes",
];
pub(in crate::config) const RECEIVER_KEYS: &[&str] = &["name", "alertmanager", "webhook", "email"];
pub(in crate::config) const ALERTMANAGER_KEYS: &[&str] = &["urls", "resend_interval", "timeout"];
pub(in crate::config) const WEBHOOK_KEYS: &[&str] =
    &["url", "secret_env", "secret_file", "timeout"];
pub(in crate::config) const EMAIL_KEYS: &[&str] = &[
    "smtp",
    "username",
    "password_env",
    "password_file",
    "from",
    "to",
    "timeout",
];
pub(in crate::config) const SMTP_KEYS: &[&str] = &["host", "port", "tls"];
pub(in crate::config) const ROUTE_KEYS: &[&str] = &[
    "receivers",
    "match",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "send_resolved",
    "continue",
];
pub(in crate::config) const MATCH_KEYS: &[&str] = &[
    "region",
    "branch",
    "kind",
    "severity",
    "condition",
    "device",
    "labels",
];

#[derive(Debug, Default)]
pub(in crate::config::settings) struct RawNotify {
    pub(super) external_url: Option<Spanned<String>>,
    pub(super) max_replay_age: Option<Spanned<String>>,
    pub(super) max_backoff: Option<Spanned<String>>,
    pub(super) receivers: Vec<RawReceiver>,
    pub(super) routes: Vec<RawRoute>,
}

#[derive(Debug)]
pub(super) struct RawReceiver {
    pub at: Location,
    pub name: Option<Spanned<String>>,
    /// Every kind written (exactly one is right).
    pub kinds: Vec<RawKind>,
}

#[derive(Debug)]
pub(super) enum RawKind {
    Alertmanager(RawAlertmanager),
    Webhook(RawWebhook),
    Email(RawEmail),
}

#[derive(Debug)]
pub(super) struct RawAlertmanager {
    pub at: Location,
    pub urls: Vec<Spanned<String>>,
    pub resend_interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug, Default)]
pub(super) struct RawWebhook {
    pub url: Option<Spanned<String>>,
    pub secret_env: Option<Spanned<String>>,
    pub secret_file: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug)]
pub(super) struct RawEmail {
    pub at: Location,
    pub host: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    pub tls: Option<Spanned<String>>,
    pub username: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub from: Option<Spanned<String>>,
    pub to: Vec<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug)]
pub(super) struct RawRoute {
    pub at: Location,
    pub receivers: Vec<Spanned<String>>,
    pub matcher: Option<RawMatch>,
    pub group_by: Option<Vec<Spanned<String>>>,
    pub group_wait: Option<Spanned<String>>,
    pub group_interval: Option<Spanned<String>>,
    pub repeat_interval: Option<Spanned<String>>,
    pub send_resolved: Option<Spanned<bool>>,
    pub continue_matching: Option<Spanned<bool>>,
}

#[derive(Debug, Default)]
pub(super) struct RawMatch {
    pub region: Vec<Spanned<String>>,
    pub branch: Vec<Spanned<String>>,
    pub kind: Vec<Spanned<String>>,
    pub severity: Vec<Spanned<String>>,
    pub condition: Vec<Spanned<String>>,
    pub device: Vec<Spanned<String>>,
    pub labels: Vec<(Spanned<String>, Vec<Spanned<String>>)>,
}

impl RawNotify {
    pub(in crate::config::settings) fn read(w: &mut Walker<'_, '_>) -> Walk<Self> {
        let mut raw = Self::default();
        w.section("notifications", NOTIFY_KEYS, |w, key, name| {
            match key {
                0 => raw.external_url = w.optional_string(name)?,
                1 => raw.max_replay_age = w.optional_string(name)?,
                2 => raw.max_backoff = w.optional_string(name)?,
                3 => w.list("notifications.receivers", |w, first| {
                    if let Some(r) = RawReceiver::read(w, first)? {
                        raw.receivers.push(r);
                    }
                    Ok(())
                })?,
                _ => w.list("notifications.routes", |w, first| {
                    if let Some(r) = RawRoute::read(w, first)? {
                        raw.routes.push(r);
                    }
                    Ok(())
                })?,
            }
            Ok(())
        })?;
        Ok(raw)
    }
}

/// Opens the mapping of `key` (null reads as absent); its place.
fn open<'a>(w: &mut Walker<'a, '_>, key: &str) -> Walk<Option<Location>> {
    let first = w.next()?;
    if matches!(&first, Event::Scalar(s) if s.is_null()) {
        return Ok(None);
    }
    w.open_mapping(Some(key), first)
}

impl RawReceiver {
    fn read<'a>(w: &mut Walker<'a, '_>, first: Event<'a>) -> Walk<Option<Self>> {
        let section = "notifications.receivers";
        let Some(at) = w.open_mapping(Some(section), first)? else {
            return Ok(None);
        };
        let mut r = RawReceiver {
            at,
            name: None,
            kinds: Vec::new(),
        };
        let seen = w.mapping(section, RECEIVER_KEYS, |w, key| {
            match key {
                0 => {
                    r.name = w.text("name")?.map(|t| Spanned {
                        value: t.value.into_owned(),
                        at: t.at,
                    })
                }
                1 => {
                    if let Some(at) = open(w, "alertmanager")? {
                        let mut am = RawAlertmanager {
                            at,
                            urls: Vec::new(),
                            resend_interval: None,
                            timeout: None,
                        };
                        let seen = w.mapping("alertmanager", ALERTMANAGER_KEYS, |w, k| {
                            match k {
                                0 => am.urls = one_or_many(w, "alertmanager.urls")?,
                                1 => am.resend_interval = w.optional_string("resend_interval")?,
                                _ => am.timeout = w.optional_string("timeout")?,
                            }
                            Ok(())
                        })?;
                        w.require(at, seen, ALERTMANAGER_KEYS, &["urls"]);
                        r.kinds.push(RawKind::Alertmanager(am));
                    }
                }
                2 => {
                    if let Some(at) = open(w, "webhook")? {
                        let mut hook = RawWebhook::default();
                        let seen = w.mapping("webhook", WEBHOOK_KEYS, |w, k| {
                            let v = w.optional_string(WEBHOOK_KEYS[k])?;
                            match k {
                                0 => hook.url = v,
                                1 => hook.secret_env = v,
                                2 => hook.secret_file = v,
                                _ => hook.timeout = v,
                            }
                            Ok(())
                        })?;
                        w.require(at, seen, WEBHOOK_KEYS, &["url"]);
                        r.kinds.push(RawKind::Webhook(hook));
                    }
                }
                _ => {
                    if let Some(at) = open(w, "email")? {
                        r.kinds.push(RawKind::Email(RawEmail::read(w, at)?));
                    }
                }
            }
            Ok(())
        })?;
        w.require(at, seen, RECEIVER_KEYS, &["name"]);
        Ok(Some(r))
    }
}

impl RawEmail {
    fn read(w: &mut Walker<'_, '_>, at: Location) -> Walk<Self> {
        let mut e = RawEmail {
            at,
            host: None,
            port: None,
            tls: None,
            username: None,
            password_env: None,
            password_file: None,
            from: None,
            to: Vec::new(),
            timeout: None,
        };
        let seen = w.mapping("email", EMAIL_KEYS, |w, k| {
            match k {
                0 => {
                    if let Some(smtp_at) = open(w, "smtp")? {
                        let seen = w.mapping("smtp", SMTP_KEYS, |w, k| {
                            match k {
                                0 => e.host = w.optional_string("host")?,
                                1 => e.port = w.number("port", "a port number (1 to 65535)")?,
                                _ => e.tls = w.optional_string("tls")?,
                            }
                            Ok(())
                        })?;
                        w.require(smtp_at, seen, SMTP_KEYS, &["host"]);
                    }
                }
                1 => e.username = w.optional_string("username")?,
                2 => e.password_env = w.optional_string("password_env")?,
                3 => e.password_file = w.optional_string("password_file")?,
                4 => e.from = w.optional_string("from")?,
                5 => e.to = one_or_many(w, "email.to")?,
                _ => e.timeout = w.optional_string("timeout")?,
            }
            Ok(())
        })?;
        w.require(at, seen, EMAIL_KEYS, &["smtp", "from", "to"]);
        Ok(e)
    }
}

impl RawRoute {
    fn read<'a>(w: &mut Walker<'a, '_>, first: Event<'a>) -> Walk<Option<Self>> {
        let section = "notifications.routes";
        let Some(at) = w.open_mapping(Some(section), first)? else {
            return Ok(None);
        };
        let mut r = RawRoute {
            at,
            receivers: Vec::new(),
            matcher: None,
            group_by: None,
            group_wait: None,
            group_interval: None,
            repeat_interval: None,
            send_resolved: None,
            continue_matching: None,
        };
        let seen = w.mapping(section, ROUTE_KEYS, |w, key| {
            match key {
                0 => r.receivers = one_or_many(w, "receivers")?,
                1 => {
                    if open(w, "match")?.is_some() {
                        r.matcher = Some(RawMatch::read(w)?);
                    }
                }
                2 => r.group_by = Some(one_or_many(w, "group_by")?),
                3 => r.group_wait = w.optional_string("group_wait")?,
                4 => r.group_interval = w.optional_string("group_interval")?,
                5 => r.repeat_interval = w.optional_string("repeat_interval")?,
                6 => r.send_resolved = w.boolean("send_resolved")?,
                _ => r.continue_matching = w.boolean("continue")?,
            }
            Ok(())
        })?;
        w.require(at, seen, ROUTE_KEYS, &["receivers"]);
        Ok(Some(r))
    }
}

impl RawMatch {
    fn read(w: &mut Walker<'_, '_>) -> Walk<Self> {
        let mut m = RawMatch::default();
        w.mapping("match", MATCH_KEYS, |w, key| {
            let name = MATCH_KEYS[key];
            match key {
                0 => m.region = one_or_many(w, name)?,
                1 => m.branch = one_or_many(w, name)?,
                2 => m.kind = one_or_many(w, name)?,
                3 => m.severity = one_or_many(w, name)?,
                4 => m.condition = one_or_many(w, name)?,
                5 => m.device = one_or_many(w, name)?,
                _ => {
                    if open(w, "labels")?.is_some() {
                        // Label names are the inventory's: any key.
                        loop {
                            match w.next()? {
                                Event::MappingEnd => break,
                                Event::Scalar(k) => {
                                    let label = Spanned {
                                        value: k.value.into_owned(),
                                        at: k.at,
                                    };
                                    let values = one_or_many(w, "labels")?;
                                    m.labels.push((label, values));
                                }
                                other => w.collection_as_key(other)?,
                            }
                        }
                    }
                }
            }
            Ok(())
        })?;
        Ok(m)
    }
}
