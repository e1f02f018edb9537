//! A device's SNMP polling as the inventory resolves it (issue #19): how to reach its
//! agent and which of its interfaces are ISP uplinks.
//!
//! In the YAML, `snmp:` on a region or branch gives defaults that the devices below it
//! inherit key by key; a device is polled when it carries `snmp:` or `uplinks:` itself.
//! Its uplinks are its own `uplinks:` list (ISP and interface) or, without one, its
//! region's `uplinks:` rules (ifAlias patterns to ISP names). Secrets (the v2c
//! community, the v3 keys) are never written in the YAML: each comes from an environment
//! variable (`…_env`) or a file (`…_file`, relative to the directory of the inventory
//! file naming it), read when that file is built (`config::secret`).
//! docs/configuration.md ("ISP uplinks: SNMP") is the reference of the format.

use std::sync::Arc;
use std::time::Duration;

pub(in crate::config) mod level;
pub(in crate::config) mod read;

use crate::snmp::uplink::{AliasRule, Matcher};
use crate::snmp::{Agent, Credentials};

/// How often an agent is polled unless the cascade says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// How long to wait for each answer unless the cascade says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// How many times a request is sent again after a timeout, by default.
pub const DEFAULT_RETRIES: u32 = 1;

/// Everything about one device's polling.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSnmp {
    pub port: u16,
    pub credentials: Credentials,
    pub timeout: Duration,
    pub retries: u32,
    pub interval: Duration,
    pub uplinks: Uplinks,
}

impl DeviceSnmp {
    /// The agent at `address` as the SNMP reader wants it.
    pub fn agent(&self, address: std::net::IpAddr) -> Agent {
        Agent {
            address,
            port: self.port,
            credentials: self.credentials.clone(),
            timeout: self.timeout,
            retries: self.retries,
        }
    }

    /// The longest a poll may take: every column's walk waits at most
    /// timeout × (retries + 1) for each of its requests.
    pub fn poll_budget(&self) -> Duration {
        self.timeout * (self.retries + 1)
    }
}

/// Which interfaces are the device's uplinks.
#[derive(Debug, Clone, PartialEq)]
pub enum Uplinks {
    /// The device's own `uplinks:` list, in written order.
    Listed(Arc<[UplinkSpec]>),
    /// Its region's ifAlias rules, shared by every device of the region that has no
    /// list of its own: each rule's ISP is the first interface (lowest ifIndex) whose
    /// alias matches it, in rule order.
    ByAlias(Arc<[AliasRule]>),
}

/// One line of a device's own list: the ISP and the interface that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UplinkSpec {
    pub isp: Arc<str>,
    pub interface: Matcher,
}

#[cfg(test)]
mod tests;
