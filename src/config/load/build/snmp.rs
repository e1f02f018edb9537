//! A device's SNMP polling: its `snmp:` cascaded over its branch's and region's, its
//! credentials complete, and its uplinks, its own list or its region's alias rules (one
//! list, shared by the region's devices).

use std::path::Path;
use std::sync::Arc;

use super::Builder;
use crate::config::error::{ConfigError, Location};
use crate::config::raw::RawDevice;
use crate::config::snmp::level::SnmpLevel;
use crate::config::snmp::read::{RawRule, RawUplinks};
use crate::config::snmp::{DeviceSnmp, UplinkSpec, Uplinks};
use crate::snmp::uplink::{AliasRule, Matcher};

/// What a device inherits for its polling from its branch and region.
pub(super) struct SnmpInherited {
    /// The region's `snmp:` under the branch's, checked.
    pub level: SnmpLevel,
    /// The region's alias rules, if it has any.
    pub rules: Option<Arc<[AliasRule]>>,
    /// The region's rules have problems (reported): its devices without a list of their
    /// own say nothing more about their uplinks.
    pub rules_broken: bool,
}

impl Builder<'_> {
    /// A region's `uplinks:` rules, in order; the same `Arc` as the previous build's
    /// when they did not change, so that reused devices and new ones share it. Err when
    /// they have problems (reported).
    pub(super) fn region_rules(
        &mut self,
        file: &Path,
        region: &str,
        raw: Option<&RawUplinks<RawRule>>,
    ) -> Result<Option<Arc<[AliasRule]>>, ()> {
        let Some(raw) = raw.filter(|r| !r.items.is_empty() || r.malformed) else {
            return Ok(None);
        };
        if raw.malformed {
            return Err(());
        }
        let before = self.errors.len();
        let mut rules = Vec::with_capacity(raw.items.len());
        for rule in &raw.items {
            let (Some(alias), Some(isp)) = (&rule.alias, &rule.isp) else {
                let place = self.place(file, rule.at);
                self.errors.push(ConfigError::new(
                    place,
                    format!(
                        "region {region:?}: uplinks: a rule needs alias (an ifAlias pattern such as \"*MAGTI*\") and isp"
                    ),
                ));
                continue;
            };
            let place = self.place(file, alias.at);
            self.check_text(
                format_args!("region {region:?}: uplinks alias"),
                &alias.value,
                &place,
                false,
            );
            let place = self.place(file, isp.at);
            self.check_text(
                format_args!("region {region:?}: uplinks isp"),
                &isp.value,
                &place,
                false,
            );
            rules.push(AliasRule::new(alias.value.trim(), isp.value.trim()));
        }
        if self.errors.len() > before {
            return Err(());
        }
        let previous = self.previous.and_then(|p| {
            p.devices.iter().find_map(|d| match d.snmp.as_deref() {
                Some(DeviceSnmp {
                    uplinks: Uplinks::ByAlias(shared),
                    ..
                }) if *d.region == *region && **shared == *rules => Some(shared.clone()),
                _ => None,
            })
        });
        Ok(Some(previous.unwrap_or_else(|| rules.into())))
    }

    /// The device's polling when it carries `snmp:` or `uplinks:`; None otherwise, and
    /// None with its problems reported when it cannot be polled as written.
    pub(super) fn device_snmp(
        &mut self,
        file: &Path,
        name: &str,
        raw: &RawDevice,
        inherited: &SnmpInherited,
    ) -> Option<Arc<DeviceSnmp>> {
        let at = raw.snmp.at.or(raw.uplinks.as_ref().map(|u| u.at))?;
        let own = SnmpLevel::resolve(&raw.snmp, file, &mut self.errors);
        let level = own.over(&inherited.level);
        level.check_privacy_key(&own, file, &mut self.errors);
        let credentials = match level.credentials() {
            Ok(c) => Some(c),
            Err(_) if level.broken => None,
            Err(missing) => {
                self.error_at(file, at, format!("device {name:?}: {missing}"));
                None
            }
        };
        let uplinks = match &raw.uplinks {
            Some(list) => self.listed_uplinks(file, name, list),
            None => match &inherited.rules {
                Some(rules) => Some(Uplinks::ByAlias(rules.clone())),
                None if inherited.rules_broken => None,
                None => {
                    self.error_at(
                        file,
                        at,
                        format!(
                            "device {name:?}: snmp: the device has no uplinks: give it an uplinks: list (isp and one of name, descr, alias, index), or its region uplinks: rules (alias patterns to ISPs)"
                        ),
                    );
                    None
                }
            },
        };
        Some(Arc::new(DeviceSnmp {
            port: level.port(),
            credentials: credentials?,
            timeout: level.timeout(),
            retries: level.retries(),
            interval: level.interval(),
            uplinks: uplinks?,
        }))
    }

    /// A device's own list: each entry an ISP (once) and exactly one interface.
    fn listed_uplinks(
        &mut self,
        file: &Path,
        name: &str,
        list: &RawUplinks<crate::config::snmp::read::RawUplink>,
    ) -> Option<Uplinks> {
        if list.malformed {
            return None;
        }
        if list.items.is_empty() {
            self.error_at(
                file,
                list.at,
                format!(
                    "device {name:?}: uplinks: the list is empty: list its uplinks, or remove uplinks: to use its region's rules"
                ),
            );
            return None;
        }
        let before = self.errors.len();
        let mut specs: Vec<UplinkSpec> = Vec::with_capacity(list.items.len());
        let mut isps: Vec<&str> = Vec::with_capacity(list.items.len());
        for item in &list.items {
            let isp = match &item.isp {
                Some(isp) => {
                    let place = self.place(file, isp.at);
                    self.check_text(
                        format_args!("device {name:?}: uplinks isp"),
                        &isp.value,
                        &place,
                        false,
                    );
                    let trimmed = isp.value.trim();
                    if isps.contains(&trimmed) {
                        self.error_at(
                            file,
                            isp.at,
                            format!("device {name:?}: uplinks: ISP {trimmed:?} is listed twice"),
                        );
                    }
                    isps.push(trimmed);
                    Some(self.intern(trimmed))
                }
                None => {
                    self.error_at(
                        file,
                        item.at,
                        format!(
                            "device {name:?}: uplinks: missing isp (the ISP this interface carries)"
                        ),
                    );
                    None
                }
            };
            let interface = match item.interface.as_slice() {
                [] => {
                    self.error_at(
                        file,
                        item.at,
                        format!(
                            "device {name:?}: uplinks: give the interface by one of name (ifName), descr (ifDescr), alias (ifAlias) or index (ifIndex)"
                        ),
                    );
                    None
                }
                [(key, value)] => self.matcher(file, name, key, value),
                [(first, _), (second, value), ..] => {
                    self.error_at(
                        file,
                        value.at,
                        format!(
                            "device {name:?}: uplinks: give one of name, descr, alias or index, not both {first} and {second}"
                        ),
                    );
                    None
                }
            };
            if let (Some(isp), Some(interface)) = (isp, interface) {
                specs.push(UplinkSpec { isp, interface });
            }
        }
        (self.errors.len() == before).then(|| Uplinks::Listed(specs.into()))
    }

    fn matcher(
        &mut self,
        file: &Path,
        name: &str,
        key: &str,
        value: &crate::config::error::Spanned<String>,
    ) -> Option<Matcher> {
        if key == "index" {
            return match value.value.trim().parse::<u32>() {
                Ok(i) if i >= 1 => Some(Matcher::Index(i)),
                _ => {
                    self.error_at(
                        file,
                        value.at,
                        format!(
                            "device {name:?}: uplinks.index: expected a whole number from 1 (an ifIndex), found {:?}",
                            value.value
                        ),
                    );
                    None
                }
            };
        }
        let place = self.place(file, value.at);
        self.check_text(
            format_args!("device {name:?}: uplinks {key}"),
            &value.value,
            &place,
            false,
        );
        // Exact names: as written, with the spaces a description may have inside.
        let text = value.value.trim().to_string();
        Some(match key {
            "name" => Matcher::Name(text),
            "descr" => Matcher::Descr(text),
            _ => Matcher::Alias(text),
        })
    }

    fn error_at(&mut self, file: &Path, at: Location, message: String) {
        let place = self.place(file, at);
        self.errors.push(ConfigError::new(place, message));
    }
}
