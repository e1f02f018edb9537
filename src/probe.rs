//! Probing: how one device is asked "are you there?".
//!
//! A [`Pinger`] sends one probe (a few ICMP echo requests) to an address and reports
//! what came back as data: a failed probe is a [`ProbeOutcome`] with no replies, never
//! an `Err`. The real implementation is [`icmp::IcmpPinger`], one shared socket per
//! address family; tests of the scheduler and state machine use a fake.

pub mod icmp;
mod packet;

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

/// How one probe is sent: `packets` echo requests spaced `spacing` apart, each given
/// `timeout` to be answered. The probe succeeds if any reply arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSpec {
    pub packets: u32,
    pub spacing: Duration,
    pub timeout: Duration,
}

/// What one probe saw.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProbeOutcome {
    /// Echo requests attempted; one whose send failed (e.g. dropped by a firewall on
    /// output) counts as sent and unanswered: the device is unreachable.
    pub sent: u32,
    /// Valid replies (right identifier, sequence and token).
    pub received: u32,
    /// Mean round-trip time of the replies, if any arrived.
    pub rtt: Option<Duration>,
}

impl ProbeOutcome {
    pub fn is_success(&self) -> bool {
        self.received > 0
    }

    /// Fraction of requests that got no reply, 0.0..=1.0 (1.0 when nothing could be sent).
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            1.0
        } else {
            1.0 - f64::from(self.received.min(self.sent)) / f64::from(self.sent)
        }
    }
}

/// Sends probes. Implementations are shared by every device task, so `probe` takes `&self`.
pub trait Pinger: Send + Sync + 'static {
    fn probe(&self, address: IpAddr, spec: ProbeSpec) -> impl Future<Output = ProbeOutcome> + Send;

    /// False once the pinger can no longer send or receive (e.g. its socket died);
    /// `/readyz` reports it.
    fn is_healthy(&self) -> bool {
        true
    }

    /// Registers the pinger's own metric families (send errors, ignored replies, ...).
    fn register(&self, _registry: &mut prometheus_client::registry::Registry) {}
}
