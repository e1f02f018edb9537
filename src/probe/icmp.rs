//! The real [`Pinger`]: ICMP echo over one socket per address family, shared by every
//! device.
//!
//! A probe registers each request in its socket's pending table (keyed by identifier
//! and sequence number) *before* sending it, because the reply can beat the send call's
//! return. One
//! receiver task per socket drains all replies and credits each to the probe whose
//! identifier, sequence, payload token and address it matches; everything else
//! carrying our identifier is counted as ignored (late, stray or forged).
//!
//! Sockets: raw (needs CAP_NET_RAW) is tried first, then unprivileged datagram ICMP
//! (`net.ipv4.ping_group_range`). A datagram socket's identifier is chosen by the
//! kernel, which rewrites it on send, so each socket matches on the identifier its
//! replies will actually carry.
//!
//! `pending` holds the table of requests in flight and the matching rule; `socket`
//! opens a socket and runs its receiver task.

mod pending;
mod socket;

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::task::AbortHandle;

use self::pending::{Outstanding, Pending, Waiter};
use self::socket::Channel;
use super::packet::Family;
use super::{Pinger, ProbeOutcome, ProbeSpec};

#[derive(Debug, thiserror::Error)]
pub enum PingerError {
    #[error(
        "cannot open an ICMP socket (raw: {raw}; datagram: {datagram}): run wardops as root, \
         or grant it CAP_NET_RAW with `setcap cap_net_raw+ep <binary>` \
         (AmbientCapabilities=CAP_NET_RAW in its systemd unit), or allow unprivileged ping \
         for its group with `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"`"
    )]
    NoSocket { raw: io::Error, datagram: io::Error },
    #[error("cannot set up the ICMP socket: {0}")]
    Setup(io::Error),
    #[error("the ICMP pinger must be opened inside a tokio runtime")]
    NoRuntime,
}

/// Counters for `/metrics`, cumulative since [`IcmpPinger::open`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PingerStats {
    /// Echo requests the kernel accepted.
    pub requests_sent: u64,
    /// Replies credited to a waiting probe.
    pub replies_received: u64,
    /// Replies carrying our identifier that answered nothing: late, unknown sequence,
    /// wrong token or wrong source address.
    pub replies_ignored: u64,
    /// Requests not sent: a send error (e.g. an nftables drop, no route), no socket for
    /// the address family, or no free slot. Each counts as unanswered.
    pub send_errors: u64,
    /// Of `send_errors`, requests for which every slot tried was in flight.
    pub slots_exhausted: u64,
}

/// The pinger's own counters; `/metrics` shows them (see [`IcmpPinger::register`]).
#[derive(Default)]
struct Counters {
    requests_sent: Counter,
    replies_received: Counter,
    replies_ignored: Counter,
    send_errors: Counter,
    slots_exhausted: Counter,
}

/// Pings over raw or datagram ICMP sockets; see the module docs. Dropping it stops the
/// receiver tasks and closes the sockets.
pub struct IcmpPinger {
    v4: Arc<Channel>,
    v6: Option<Arc<Channel>>,
    counters: Arc<Counters>,
    receivers: Vec<AbortHandle>,
}

impl IcmpPinger {
    /// Opens the IPv4 socket (or fails with the fix in the message) and, if it can, the
    /// IPv6 one, and spawns their receiver tasks. Must be called inside a tokio runtime.
    pub fn open() -> Result<IcmpPinger, PingerError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| PingerError::NoRuntime)?;
        let counters = Arc::new(Counters::default());
        // Random so that two pingers on one host (raw sockets see each other's replies)
        // rarely share an identifier; the token settles it when they do.
        let identifier = rand::random();
        let v4 = Arc::new(Channel::open(Family::V4, identifier, &counters)?);
        let v6 = match Channel::open(Family::V6, identifier, &counters) {
            Ok(channel) => Some(Arc::new(channel)),
            Err(error) => {
                tracing::warn!(%error, "no ICMPv6 socket: IPv6 devices will be reported down");
                None
            }
        };
        let receivers = std::iter::once(&v4)
            .chain(&v6)
            .map(|channel| runtime.spawn(Arc::clone(channel).receive()).abort_handle())
            .collect();
        Ok(IcmpPinger {
            v4,
            v6,
            counters,
            receivers,
        })
    }

    pub fn stats(&self) -> PingerStats {
        let c = &self.counters;
        PingerStats {
            requests_sent: c.requests_sent.get(),
            replies_received: c.replies_received.get(),
            replies_ignored: c.replies_ignored.get(),
            send_errors: c.send_errors.get(),
            slots_exhausted: c.slots_exhausted.get(),
        }
    }

    /// Requests in flight on both sockets. For tests.
    #[doc(hidden)]
    pub fn in_flight_total(&self) -> usize {
        std::iter::once(&self.v4)
            .chain(&self.v6)
            .map(|channel| channel.pending.lock().len())
            .sum()
    }

    /// (identifier, sequence) of the requests to `address` still awaiting a reply. For
    /// tests.
    #[doc(hidden)]
    pub fn in_flight(&self, address: IpAddr) -> Vec<(u16, u16)> {
        let address = address.to_canonical();
        let Some(channel) = self.channel(address) else {
            return Vec::new();
        };
        let table = channel.pending.lock();
        table
            .iter()
            .filter(|(_, p)| p.address == address)
            .map(|(&slot, p)| {
                let echo = channel.echo(slot, p.token);
                (echo.identifier, echo.sequence)
            })
            .collect()
    }

    fn channel(&self, address: IpAddr) -> Option<&Channel> {
        match Family::of(address) {
            Family::V4 => Some(&self.v4),
            Family::V6 => self.v6.as_deref(),
        }
    }
}

impl Drop for IcmpPinger {
    fn drop(&mut self) {
        self.receivers.iter().for_each(AbortHandle::abort);
    }
}

impl Pinger for IcmpPinger {
    async fn probe(&self, address: IpAddr, spec: ProbeSpec) -> ProbeOutcome {
        // An IPv4-mapped IPv6 address is an IPv4 device; its replies come from IPv4.
        let address = address.to_canonical();
        let unanswered = ProbeOutcome {
            sent: spec.packets,
            received: 0,
            rtt: None,
        };
        let Some(channel) = self.channel(address) else {
            self.counters.send_errors.inc_by(spec.packets.into());
            return unanswered;
        };
        let waiter = Arc::new(Waiter::default());
        // Removes whatever is still pending however this future ends, even if dropped.
        let mut outstanding = Outstanding {
            table: &channel.pending,
            token: rand::random(),
            sequences: Vec::with_capacity(spec.packets as usize),
        };
        let start = tokio::time::Instant::now();
        let mut last_deadline = start;
        let mut in_flight = 0;
        for n in 0..spec.packets {
            if n > 0 {
                // Spaced from the start, so a slow send does not push later ones back.
                tokio::time::sleep_until(start + spec.spacing * n).await;
            }
            let sent_at = Instant::now();
            let pending = Pending {
                token: outstanding.token,
                address,
                sent_at,
                sent_wall: SystemTime::now(),
                deadline: sent_at + spec.timeout,
                waiter: Arc::clone(&waiter),
            };
            let Some(slot) = channel.register(pending) else {
                self.counters.send_errors.inc();
                self.counters.slots_exhausted.inc();
                continue;
            };
            outstanding.sequences.push(slot);
            match channel
                .send(address, channel.echo(slot, outstanding.token))
                .await
            {
                Ok(()) => {
                    self.counters.requests_sent.inc();
                    in_flight += 1;
                    last_deadline = tokio::time::Instant::from_std(sent_at + spec.timeout);
                }
                // Data, not a broken socket: the device is unreachable from here.
                Err(error) => {
                    self.counters.send_errors.inc();
                    tracing::trace!(%address, %error, "echo request not sent");
                    outstanding.forget(slot);
                }
            }
        }
        while waiter.received.load(Relaxed) < in_flight {
            let notified = waiter.notify.notified();
            if tokio::time::timeout_at(last_deadline, notified)
                .await
                .is_err()
            {
                break;
            }
        }
        // After this no reply can be credited, and every credit already made is visible
        // (credits are recorded under the table lock that `drop` takes).
        drop(outstanding);
        let received = waiter.received.load(Relaxed);
        let rtt = (received > 0)
            .then(|| Duration::from_nanos(waiter.rtt_nanos.load(Relaxed) / u64::from(received)));
        ProbeOutcome {
            received,
            rtt,
            ..unanswered
        }
    }

    fn is_healthy(&self) -> bool {
        std::iter::once(&self.v4)
            .chain(&self.v6)
            .all(|channel| !channel.failed.load(Relaxed))
    }

    fn register(&self, registry: &mut Registry) {
        let c = &self.counters;
        for (name, help, counter) in [
            (
                "wardops_icmp_send_errors",
                "Echo requests not sent: a send error (an nftables drop, no route), no socket for the family, or no free slot",
                &c.send_errors,
            ),
            (
                "wardops_icmp_slots_exhausted",
                "Echo requests not sent because every identifier and sequence number tried was in flight",
                &c.slots_exhausted,
            ),
            (
                "wardops_icmp_replies_ignored",
                "Echo replies carrying our identifiers that answered no request in flight: late, unknown, forged or from the wrong address",
                &c.replies_ignored,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
    }
}
