//! What the appliance tells systemd (`sd_notify(3)`, a `Type=notify` unit): `READY=1` once
//! it serves, `WATCHDOG=1` only while the prober is healthy, `STOPPING=1` when the drain
//! begins, and `RELOADING=1` … `READY=1` around a SIGHUP reload.
//!
//! The watchdog is the point: the old system's worst failure was a scheduler that died
//! silently while its web pages kept answering. Fed from the same reasons `/readyz` gives
//! for the prober (stalled, ICMP socket dead), a stalled prober stops the pings and systemd
//! restarts the appliance `WatchdogSec` later. A degraded store is not among them: a
//! restart does not bring a database back, and the spool already covers it.
//!
//! Every call is a no-op when `NOTIFY_SOCKET` is unset (not started by systemd), and a
//! failed send is logged, never fatal. A leaf: imports nothing of the appliance.
//!
//! The protocol is a datagram of `KEY=value` lines to a unix socket. It is written here
//! rather than with the `sd-notify` crate because that crate's send blocks for as long as
//! the manager's queue is full: on a tokio worker that wedged the HTTP server in a test
//! whose reader paused (`tests/systemd_notify.rs`). Here a watchdog ping that finds the
//! queue full is dropped (the next one comes half a period later), and the rare state
//! changes wait at most a second.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// How long a state change may wait for room in the manager's queue.
const STATE_TIMEOUT: Duration = Duration::from_secs(1);

/// `READY=1`: the listener accepts and the first inventory is being probed.
pub fn ready() {
    send("READY=1\nSTATUS=serving\n", Some(STATE_TIMEOUT));
}

/// `STOPPING=1`: shutdown began (the HTTP drain and the store's last writes follow).
pub fn stopping() {
    send("STOPPING=1\nSTATUS=stopping\n", Some(STATE_TIMEOUT));
}

/// `RELOADING=1` with the monotonic time systemd ≥ 253 asks for beside it.
pub fn reloading() {
    let message = format!("RELOADING=1\nMONOTONIC_USEC={}\n", monotonic_usec());
    send(&message, Some(STATE_TIMEOUT));
}

/// `READY=1` after a reload, whatever its outcome: a rejected inventory leaves the running
/// one in place, so the appliance is as ready as before.
pub fn reloaded() {
    ready();
}

/// How often to feed the watchdog: half of `WATCHDOG_USEC`, as `sd_watchdog_enabled(3)`
/// advises, so one late tick is not a restart. None when systemd set no watchdog for
/// this process (`WATCHDOG_PID`, when set, names another process), or no socket to
/// feed it through.
pub fn watchdog_period() -> Option<Duration> {
    std::env::var_os("NOTIFY_SOCKET")?;
    let usec = std::env::var("WATCHDOG_USEC").ok()?;
    let pid = std::env::var("WATCHDOG_PID").ok();
    period(&usec, pid.as_deref(), std::process::id())
}

fn period(usec: &str, pid: Option<&str>, own: u32) -> Option<Duration> {
    if pid.is_some_and(|p| p.parse() != Ok(own)) {
        return None;
    }
    let usec: u64 = usec.parse().ok().filter(|&u| u > 0)?;
    Some(Duration::from_micros(usec) / 2)
}

/// Feeds the watchdog every `period` while `unhealthy()` gives no reason, until dropped.
/// Runs on the main runtime, not the prober's thread: a stalled prober must be seen, and
/// a wedged main runtime stops the pings as well.
pub async fn feed_watchdog(period: Duration, unhealthy: impl Fn() -> Vec<String>) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut feeding = true;
    loop {
        ticks.tick().await;
        let reasons = unhealthy();
        let beat = Beat::after(feeding, &reasons);
        feeding = beat.feed;
        match beat.change {
            Some(Change::Withheld) => tracing::error!(
                reasons = %reasons.join("; "),
                "not feeding the systemd watchdog: systemd restarts the appliance unless the prober recovers"
            ),
            Some(Change::Resumed) => {
                tracing::info!("prober healthy again: feeding the systemd watchdog")
            }
            None => {}
        }
        let mut message = String::new();
        if beat.feed {
            message.push_str("WATCHDOG=1\n");
        }
        if beat.change.is_some() {
            match beat.feed {
                true => message.push_str("STATUS=serving\n"),
                false => message.push_str(&format!("STATUS=not ready: {}\n", reasons.join("; "))),
            }
        }
        if !message.is_empty() {
            send(&message, None);
        }
    }
}

/// One tick of the watchdog: whether to feed it and whether that changed.
#[derive(Debug, PartialEq)]
struct Beat {
    feed: bool,
    change: Option<Change>,
}

#[derive(Debug, PartialEq)]
enum Change {
    Withheld,
    Resumed,
}

impl Beat {
    fn after(was_feeding: bool, reasons: &[String]) -> Beat {
        let feed = reasons.is_empty();
        let change = match (was_feeding, feed) {
            (true, false) => Some(Change::Withheld),
            (false, true) => Some(Change::Resumed),
            _ => None,
        };
        Beat { feed, change }
    }
}

/// Sends `message` to `NOTIFY_SOCKET`, if set: waits up to `timeout` for room, or not at
/// all (`None`).
fn send(message: &str, timeout: Option<Duration>) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send_to(&path, message.as_bytes(), timeout) {
        // Said at debug: every tick would say it again, and systemd's own log tells of a
        // watchdog that went hungry.
        tracing::debug!(error = %e, "cannot notify systemd");
    }
}

fn send_to(path: &std::ffi::OsStr, message: &[u8], timeout: Option<Duration>) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let socket = UnixDatagram::unbound()?;
    match path.as_bytes().strip_prefix(b"@") {
        // An abstract socket (`@name`), as a manager in a container may pass.
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.connect_addr(&address)?;
        }
        None => socket.connect(path)?,
    }
    match timeout {
        Some(t) => socket.set_write_timeout(Some(t))?,
        None => socket.set_nonblocking(true)?,
    }
    socket.send(message)?;
    Ok(())
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
fn monotonic_usec() -> u128 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u128 * 1_000_000 + now.tv_nsec as u128 / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_is_half_of_watchdog_usec_for_this_process_only() {
        assert_eq!(period("30000000", None, 7), Some(Duration::from_secs(15)));
        assert_eq!(
            period("30000000", Some("7"), 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(period("30000000", Some("8"), 7), None, "another process's");
        assert_eq!(period("0", None, 7), None);
        assert_eq!(period("soon", None, 7), None);
    }

    #[test]
    fn a_full_queue_drops_a_ping_instead_of_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let manager = UnixDatagram::bind(&path).unwrap();
        let mut sent = 0;
        // The default queue is ten datagrams (net.unix.max_dgram_qlen); nobody reads.
        for _ in 0..100 {
            if send_to(path.as_os_str(), b"WATCHDOG=1\n", None).is_ok() {
                sent += 1;
            }
        }
        assert!((1..100).contains(&sent), "{sent} sent");
        let mut buf = [0u8; 64];
        let n = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1\n");
    }

    #[test]
    fn an_abstract_socket_is_reached() {
        let name = format!("wardops-test-{}", std::process::id());
        use std::os::linux::net::SocketAddrExt;
        let address = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let manager = UnixDatagram::bind_addr(&address).unwrap();
        send_to(
            std::ffi::OsStr::new(&format!("@{name}")),
            b"READY=1\n",
            Some(STATE_TIMEOUT),
        )
        .unwrap();
        let mut buf = [0u8; 64];
        let n = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
    }

    #[test]
    fn the_watchdog_is_fed_only_while_nothing_is_wrong() {
        let stalled = vec!["the prober is stalled".to_string()];
        assert_eq!(
            Beat::after(true, &[]),
            Beat {
                feed: true,
                change: None
            }
        );
        assert_eq!(
            Beat::after(true, &stalled),
            Beat {
                feed: false,
                change: Some(Change::Withheld)
            }
        );
        assert_eq!(
            Beat::after(false, &stalled),
            Beat {
                feed: false,
                change: None
            }
        );
        assert_eq!(
            Beat::after(false, &[]),
            Beat {
                feed: true,
                change: Some(Change::Resumed)
            }
        );
    }
}
