//! Outbox rows → [`Notice`]s: the store's alert and device, the inventory's labels and
//! the devices unreachable behind it as the state is now, and the device's page under
//! the configured external URL.

use crate::read_model::UnreachableBehind;
use crate::state::Snapshot;
use crate::store::notify::OutboxRow;

use super::{Notice, NoticeState};

/// Builds notices against one snapshot (counting the unreachable behind each is cheap
/// with one [`UnreachableBehind`] for all of them).
pub struct Builder<'a> {
    snapshot: &'a Snapshot,
    behind: UnreachableBehind<'a>,
    external_url: Option<&'a reqwest::Url>,
}

impl<'a> Builder<'a> {
    pub fn new(snapshot: &'a Snapshot, external_url: Option<&'a reqwest::Url>) -> Builder<'a> {
        Builder {
            snapshot,
            behind: UnreachableBehind::new(snapshot),
            external_url,
        }
    }

    pub fn notice(&mut self, row: &OutboxRow) -> Notice {
        let a = &row.alert;
        let device = self.snapshot.inventory.device(&a.device);
        let scope = row.scope.as_ref();
        let text = |live: Option<&str>, stored: Option<&str>| {
            live.or(stored).unwrap_or_default().to_string()
        };
        let state = if row.change == "resolved" {
            NoticeState::Resolved
        } else {
            NoticeState::Firing
        };
        Notice {
            outbox_id: row.id,
            state,
            alert_id: a.id,
            condition: a.condition.clone(),
            severity: a.severity.clone(),
            device: a.device.clone(),
            address: device
                .map(|d| d.address.to_string())
                .or_else(|| row.address.clone())
                .unwrap_or_default(),
            region: text(device.map(|d| &*d.region), scope.map(|s| s.region.as_str())),
            branch: text(device.map(|d| &*d.branch), scope.map(|s| s.branch.as_str())),
            kind: text(device.map(|d| &*d.kind), scope.map(|s| s.kind.as_str())),
            labels: device
                .map(|d| {
                    d.labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            summary: a.message.clone(),
            opened_at: a.opened_at,
            // A resolution tells when; an opening tells nothing of a later resolve.
            resolved_at: match state {
                NoticeState::Resolved => a.resolved_at.or(Some(row.at)),
                NoticeState::Firing => None,
            },
            down_since: row.down_since,
            unreachable_behind: self
                .behind
                .of_name(&a.device)
                .map_or(0, |n| n.min(u32::MAX as usize) as u32),
            url: self.external_url.map(|base| device_url(base, &a.device)),
        }
    }
}

/// What a device name keeps unescaped in a URL path: RFC 3986's unreserved characters.
const PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The device's page under `base` (`https://wardops.example/devices/<name>`).
pub fn device_url(base: &reqwest::Url, device: &str) -> String {
    let name: String = percent_encoding::utf8_percent_encode(device, PATH).collect();
    format!("{}/devices/{name}", base.as_str().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn device_urls_are_under_the_external_url_and_escaped() {
        let base = reqwest::Url::parse("https://w.example/ops/").unwrap();
        assert_eq!(
            super::device_url(&base, "atm-1 1/a"),
            "https://w.example/ops/devices/atm-1%201%2Fa"
        );
    }
}
