//! The `reports:` section: SLA targets, per kind and/or label.
//!
//! ```yaml
//! reports:
//!   sla:
//!     - { kind: router, target: 99.9 }
//!     - { label: { tier: gold }, target: 99.95 }
//!     - { kind: atm, label: { tier: gold }, target: 99.5 }
//! ```
//!
//! A device's target is the first rule whose kind (if given) and every label (if given)
//! match it; a rule with neither would match every device and is refused (write it last
//! with `kind` of each, or use a label every device carries). A target is a percentage
//! above 0 and at most 100.

use std::path::Path;
use std::sync::Arc;

use crate::config::error::{ConfigError, Place, Spanned};
use crate::config::walk::{Walk, Walker};
use crate::config::yaml::Event;

/// One SLA rule.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaRule {
    pub kind: Option<Arc<str>>,
    /// Every one must equal the device's.
    pub labels: Vec<(String, String)>,
    /// Percent of the judged time up.
    pub target: f64,
}

/// Settings of the reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportSettings {
    /// In order: the first that matches a device applies.
    pub sla: Vec<SlaRule>,
}

pub(in crate::config) const REPORTS_KEYS: &[&str] = &["sla"];
pub(in crate::config) const RULE_KEYS: &[&str] = &["kind", "label", "target"];

/// One rule as written.
#[derive(Debug)]
struct RawRule {
    at: crate::config::error::Location,
    kind: Option<Spanned<String>>,
    labels: Vec<(Spanned<String>, Spanned<String>)>,
    target: Option<Spanned<String>>,
}

/// `reports:` as written.
#[derive(Debug, Default)]
pub(super) struct RawReports {
    sla: Vec<RawRule>,
}

impl RawReports {
    pub(super) fn read(w: &mut Walker<'_, '_>) -> Walk<Self> {
        let mut raw = Self::default();
        w.section("reports", REPORTS_KEYS, |w, _, _| {
            w.list("reports.sla", |w, first| {
                let Some(at) = w.open_mapping(Some("reports.sla item"), first)? else {
                    return Ok(());
                };
                let mut rule = RawRule {
                    at,
                    kind: None,
                    labels: Vec::new(),
                    target: None,
                };
                let seen = w.mapping("reports.sla item", RULE_KEYS, |w, key| {
                    match key {
                        0 => rule.kind = w.optional_string("kind")?,
                        1 => rule.labels = read_labels(w)?,
                        _ => rule.target = w.optional_string("target")?,
                    }
                    Ok(())
                })?;
                w.require(at, seen, RULE_KEYS, &["target"]);
                raw.sla.push(rule);
                Ok(())
            })
        })?;
        Ok(raw)
    }

    pub(super) fn resolve(&self, path: &Path, errors: &mut Vec<ConfigError>) -> ReportSettings {
        let mut settings = ReportSettings::default();
        for (i, r) in self.sla.iter().enumerate() {
            let place = |at| Place::at(path, at);
            let item = format!("reports.sla[{i}]");
            if r.kind.is_none() && r.labels.is_empty() {
                errors.push(ConfigError::new(
                    place(r.at),
                    format!("{item}: needs a kind or a label (a rule for every device is a mistake more often than not)"),
                ));
            }
            let Some(t) = &r.target else { continue };
            let target = match t.value.trim().trim_end_matches('%').trim().parse::<f64>() {
                Ok(v) if v > 0.0 && v <= 100.0 => v,
                _ => {
                    errors.push(ConfigError::new(
                        place(t.at),
                        format!(
                            "{item}.target: expected a percentage above 0 and at most 100 such as 99.9, found {:?}",
                            t.value
                        ),
                    ));
                    continue;
                }
            };
            settings.sla.push(SlaRule {
                kind: r.kind.as_ref().map(|k| Arc::from(k.value.trim())),
                labels: r
                    .labels
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.value.clone()))
                    .collect(),
                target,
            });
        }
        settings
    }
}

/// `label: { key: value, … }`: every value a single one.
fn read_labels(w: &mut Walker<'_, '_>) -> Walk<Vec<(Spanned<String>, Spanned<String>)>> {
    let mut labels = Vec::new();
    let first = w.next()?;
    if w.open_mapping(Some("label"), first)?.is_none() {
        return Ok(labels);
    }
    loop {
        match w.next()? {
            Event::MappingEnd => return Ok(labels),
            Event::Scalar(key) => {
                let name = key.value.to_string();
                match w.optional_string(&format!("label {name}"))? {
                    Some(value) => labels.push((
                        Spanned {
                            value: name,
                            at: key.at,
                        },
                        value,
                    )),
                    None => w.error(key.at, format!("label {name}: expected a value")),
                }
            }
            other => w.collection_as_key(other)?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::tests::parse;

    #[test]
    fn rules_are_read_in_order() {
        let s = parse(
            "reports:\n  sla:\n    - { kind: router, target: 99.9 }\n    - { label: { tier: gold }, target: \"99.95%\" }\n",
        )
        .unwrap();
        assert_eq!(
            s.reports.sla,
            vec![
                SlaRule {
                    kind: Some("router".into()),
                    labels: vec![],
                    target: 99.9
                },
                SlaRule {
                    kind: None,
                    labels: vec![("tier".into(), "gold".into())],
                    target: 99.95
                },
            ]
        );
        assert_eq!(parse("").unwrap().reports, ReportSettings::default());
        assert_eq!(
            parse("reports:\n").unwrap().reports,
            ReportSettings::default()
        );
    }

    #[test]
    fn bad_rules_are_errors_at_their_place() {
        assert_eq!(
            parse("reports:\n  sla:\n    - { kind: router, target: 101 }\n").unwrap_err(),
            "w.yaml:3:31: reports.sla[0].target: expected a percentage above 0 and at most 100 such as 99.9, found \"101\""
        );
        assert_eq!(
            parse("reports:\n  sla:\n    - { target: 99 }\n").unwrap_err(),
            "w.yaml:3:7: reports.sla[0]: needs a kind or a label (a rule for every device is a mistake more often than not)"
        );
        assert_eq!(
            parse("reports:\n  sla:\n    - { kind: atm }\n").unwrap_err(),
            "w.yaml:3:7: missing required key \"target\""
        );
        assert_eq!(
            parse("reports:\n  sla:\n    - { kinds: atm, target: 99 }\n").unwrap_err(),
            "w.yaml:3:9: reports.sla item: unknown key \"kinds\" (did you mean \"kind\"?)"
        );
        assert_eq!(
            parse("reports:\n  sla:\n    - { kind: atm, target: lots }\n").unwrap_err(),
            "w.yaml:3:28: reports.sla[0].target: expected a percentage above 0 and at most 100 such as 99.9, found \"lots\""
        );
    }
}
