//! The `snmp:` and `uplinks:` sections as written, with their places: walked here,
//! checked by [`super::level`] and the inventory's builder.

use crate::config::error::{Location, Spanned};
use crate::config::walk::{Walk, Walker, start_of};
use crate::config::yaml::Event;

/// The keys of an `snmp:` section. The last four are secrets written in the open:
/// known, so that they are refused with the way to name them instead.
pub(in crate::config) const SNMP_KEYS: &[&str] = &[
    "version",
    "community_env",
    "community_file",
    "port",
    "timeout",
    "retries",
    "interval",
    "user",
    "auth",
    "auth_key_env",
    "auth_key_file",
    "privacy",
    "privacy_key_env",
    "privacy_key_file",
    "community",
    "auth_key",
    "privacy_key",
    "password",
];

/// The literal secret keys of [`SNMP_KEYS`] and the keys that name them instead.
pub(in crate::config) const LITERAL_SECRETS: &[(&str, &str)] = &[
    ("community", "community_env or community_file"),
    ("auth_key", "auth_key_env or auth_key_file"),
    ("privacy_key", "privacy_key_env or privacy_key_file"),
    (
        "password",
        "auth_key_env or auth_key_file (the v3 authentication key)",
    ),
];

/// A region's `uplinks:` rule.
pub(in crate::config) const RULE_KEYS: &[&str] = &["alias", "isp"];
/// A device's `uplinks:` entry: the ISP and exactly one of the interface keys.
pub(in crate::config) const UPLINK_KEYS: &[&str] = &["isp", "name", "descr", "alias", "index"];

/// One level's `snmp:` as written; every key optional.
#[derive(Debug, Clone, Default)]
pub struct SnmpOverrides {
    /// Where the section's value starts, when it is written (even empty: `snmp: {}`).
    pub at: Option<Location>,
    pub version: Option<Spanned<String>>,
    pub community_env: Option<Spanned<String>>,
    pub community_file: Option<Spanned<String>>,
    pub port: Option<Spanned<u32>>,
    pub timeout: Option<Spanned<String>>,
    pub retries: Option<Spanned<u32>>,
    pub interval: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub auth: Option<Spanned<String>>,
    pub auth_key_env: Option<Spanned<String>>,
    pub auth_key_file: Option<Spanned<String>>,
    pub privacy: Option<Spanned<String>>,
    pub privacy_key_env: Option<Spanned<String>>,
    pub privacy_key_file: Option<Spanned<String>>,
}

/// A region's rule: an ifAlias pattern and its ISP.
#[derive(Debug, Clone)]
pub struct RawRule {
    pub at: Location,
    pub alias: Option<Spanned<String>>,
    pub isp: Option<Spanned<String>>,
}

/// A device's uplink: the ISP and the interface keys written (one is right).
#[derive(Debug, Clone)]
pub struct RawUplink {
    pub at: Location,
    pub isp: Option<Spanned<String>>,
    /// `(key, value)` for each of name, descr, alias, index written, in order.
    pub interface: Vec<(&'static str, Spanned<String>)>,
}

/// A level's `uplinks:` as written: where, and its items.
#[derive(Debug, Clone)]
pub struct RawUplinks<T> {
    pub at: Location,
    pub items: Vec<T>,
    /// Not a list (reported): nothing more to say about it.
    pub malformed: bool,
}

impl SnmpOverrides {
    /// Reads an `snmp:` section; left empty (`snmp:` alone or `{}`), it is still there.
    pub(in crate::config) fn read(w: &mut Walker<'_, '_>) -> Walk<SnmpOverrides> {
        let mut s = SnmpOverrides::default();
        let first = w.next()?;
        let at = start_of(&first);
        if matches!(&first, Event::Scalar(v) if v.is_null()) {
            s.at = Some(at);
            return Ok(s);
        }
        if w.open_mapping(Some("snmp"), first)?.is_none() {
            return Ok(s);
        }
        s.at = Some(at);
        w.mapping("snmp", SNMP_KEYS, |w, key| {
            let name = SNMP_KEYS[key];
            let text = |w: &mut Walker<'_, '_>| w.optional_string(&format!("snmp.{name}"));
            match name {
                "version" => s.version = text(w)?,
                "community_env" => s.community_env = text(w)?,
                "community_file" => s.community_file = text(w)?,
                "port" => s.port = w.number("snmp.port", "a whole number")?,
                "timeout" => s.timeout = text(w)?,
                "retries" => s.retries = w.number("snmp.retries", "a whole number")?,
                "interval" => s.interval = text(w)?,
                "user" => s.user = text(w)?,
                "auth" => s.auth = text(w)?,
                "auth_key_env" => s.auth_key_env = text(w)?,
                "auth_key_file" => s.auth_key_file = text(w)?,
                "privacy" => s.privacy = text(w)?,
                "privacy_key_env" => s.privacy_key_env = text(w)?,
                "privacy_key_file" => s.privacy_key_file = text(w)?,
                literal => {
                    let first = w.next()?;
                    let (_, instead) = LITERAL_SECRETS
                        .iter()
                        .find(|(k, _)| *k == literal)
                        .expect("a literal secret key");
                    w.error(
                        start_of(&first),
                        format!(
                            "snmp.{literal}: secrets are not written in the inventory: use {instead}"
                        ),
                    );
                    w.skip(first)?;
                }
            }
            Ok(())
        })?;
        Ok(s)
    }
}

/// A region's `uplinks:` list of rules.
pub(in crate::config) fn rules(w: &mut Walker<'_, '_>) -> Walk<Option<RawUplinks<RawRule>>> {
    list(w, |w, at| {
        let mut rule = RawRule {
            at,
            alias: None,
            isp: None,
        };
        w.mapping("uplinks", RULE_KEYS, |w, key| {
            match key {
                0 => rule.alias = w.optional_string("uplinks.alias")?,
                _ => rule.isp = w.optional_string("uplinks.isp")?,
            }
            Ok(())
        })?;
        Ok(rule)
    })
}

/// A device's own `uplinks:` list.
pub(in crate::config) fn uplinks(w: &mut Walker<'_, '_>) -> Walk<Option<RawUplinks<RawUplink>>> {
    list(w, |w, at| {
        let mut uplink = RawUplink {
            at,
            isp: None,
            interface: Vec::new(),
        };
        w.mapping("uplinks", UPLINK_KEYS, |w, key| {
            let name = UPLINK_KEYS[key];
            let value = w.optional_string(&format!("uplinks.{name}"))?;
            match (key, value) {
                (0, isp) => uplink.isp = isp,
                (_, Some(v)) => uplink.interface.push((name, v)),
                (_, None) => {}
            }
            Ok(())
        })?;
        Ok(uplink)
    })
}

/// An `uplinks:` list of mappings, each read by `item` from inside it (with its place);
/// null reads as an empty list.
fn list<'a, T>(
    w: &mut Walker<'a, '_>,
    mut item: impl FnMut(&mut Walker<'a, '_>, Location) -> Walk<T>,
) -> Walk<Option<RawUplinks<T>>> {
    let first = w.next()?;
    let at = start_of(&first);
    let mut items = Vec::new();
    match first {
        Event::Scalar(s) if s.is_null() => {}
        Event::SequenceStart(_) => loop {
            match w.next()? {
                Event::SequenceEnd => break,
                first => {
                    if let Some(at) = w.open_mapping(Some("uplinks"), first)? {
                        items.push(item(w, at)?);
                    }
                }
            }
        },
        other => {
            w.error(at, "uplinks: expected a list");
            w.skip(other)?;
            return Ok(Some(RawUplinks {
                at,
                items,
                malformed: true,
            }));
        }
    }
    Ok(Some(RawUplinks {
        at,
        items,
        malformed: false,
    }))
}
