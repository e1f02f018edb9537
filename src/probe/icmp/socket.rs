//! One ICMP socket of the pinger, its options, and its receiver task.
//!
//! A [`Channel`] owns the socket of one address family, the range of identifiers its
//! requests carry, and the table of requests in flight on it. Its receiver task is the
//! only reader of the socket: it drains every queued datagram per wakeup, with the
//! kernel's receive timestamp of each (`SO_TIMESTAMPNS`), and credits replies through
//! [`pending::credit`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::pending::{self, Arrival, Pending, Slot, Table};
use super::{Counters, PingerError};
use crate::probe::packet::{self, Echo, Family};

/// Room for a burst of ~100,000 replies queued while the receiver task waits for a core.
const RECEIVE_BUFFER: usize = 8 << 20;
/// From `<asm-generic/socket.h>` (also mips); libc does not export it for glibc targets.
/// sparc numbers it differently, so there we settle for `SO_RCVBUF`.
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
const SO_RCVBUFFORCE: Option<libc::c_int> = Some(33);
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SO_RCVBUFFORCE: Option<libc::c_int> = None;
/// From `<linux/icmp.h>` and `<linux/icmpv6.h>`.
const ICMP_FILTER: libc::c_int = 1;
const ICMP6_FILTER: libc::c_int = 1;
/// A receive error that is not one of the known fatal ones is tolerated (ICMP errors
/// queued on a datagram socket, memory pressure) unless it repeats this often in a row.
const MAX_RECEIVE_ERRORS: u32 = 100;
/// Identifiers a raw socket's requests carry (consecutive from a random base), each with
/// 65,536 sequence numbers: 524,288 requests in flight per family. A datagram socket has
/// the one identifier the kernel gives it.
const RAW_IDENTIFIERS: u16 = 8;

/// One socket and the requests in flight on it.
pub(super) struct Channel {
    pub(super) family: Family,
    socket: AsyncFd<Socket>,
    /// Raw IPv4 sockets deliver the IPv4 header in front of the ICMP message.
    ip_header: bool,
    /// The first identifier of the range; `identifiers` of them (a power of two).
    pub(super) identifier: u16,
    identifiers: u16,
    /// The next slot to try, wrapping over `identifiers << 16`.
    next: AtomicU32,
    pub(super) pending: Table,
    counters: Arc<Counters>,
    pub(super) failed: AtomicBool,
}

impl Channel {
    pub(super) fn open(
        family: Family,
        identifier: u16,
        counters: &Arc<Counters>,
    ) -> Result<Self, PingerError> {
        let (domain, protocol, wildcard) = match family {
            Family::V4 => (
                Domain::IPV4,
                Protocol::ICMPV4,
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ),
            Family::V6 => (
                Domain::IPV6,
                Protocol::ICMPV6,
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ),
        };
        let (socket, raw) = match Socket::new(domain, Type::RAW, Some(protocol)) {
            Ok(socket) => (socket, true),
            Err(raw) => match Socket::new(domain, Type::DGRAM, Some(protocol)) {
                Ok(socket) => (socket, false),
                Err(datagram) => return Err(PingerError::NoSocket { raw, datagram }),
            },
        };
        socket.set_nonblocking(true).map_err(PingerError::Setup)?;
        // SO_RCVBUFFORCE passes net.core.rmem_max but needs CAP_NET_ADMIN.
        let size = RECEIVE_BUFFER as libc::c_int;
        let forced = SO_RCVBUFFORCE.map(|name| set_option(&socket, libc::SOL_SOCKET, name, &size));
        if !matches!(forced, Some(Ok(()))) {
            let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER);
        }
        if let Err(error) = set_option(&socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &1) {
            tracing::debug!(%error, "no kernel receive timestamps: RTT includes the receiver's wake-up");
        }
        let (identifier, identifiers) = if raw {
            if let Err(error) = accept_only_replies(&socket, family) {
                tracing::debug!(%error, "no ICMP filter: the receiver will see all ICMP");
            }
            (identifier, RAW_IDENTIFIERS)
        } else {
            // Binding to port 0 makes the kernel pick the identifier it will stamp on
            // our requests and filter replies by; learn it.
            let local = SockAddr::from(SocketAddr::new(wildcard, 0));
            socket.bind(&local).map_err(PingerError::Setup)?;
            let bound = socket.local_addr().map_err(PingerError::Setup)?;
            (bound.as_socket().map_or(0, |address| address.port()), 1)
        };
        tracing::info!(
            ?family,
            kind = if raw { "raw" } else { "datagram" },
            identifier,
            identifiers,
            receive_buffer = socket.recv_buffer_size().unwrap_or(0),
            "ICMP socket open"
        );
        // SAFETY: the `Socket` owns its descriptor and keeps it open until dropped.
        let socket = unsafe { AsyncFd::register(socket) }
            .map_err(|error| PingerError::Setup(error.into_parts().1))?;
        Ok(Channel {
            family,
            socket,
            ip_header: raw && family == Family::V4,
            identifier,
            identifiers,
            next: AtomicU32::new(rand::random()),
            pending: Mutex::new(HashMap::with_capacity(4096)),
            counters: Arc::clone(counters),
            failed: AtomicBool::new(false),
        })
    }

    /// Files `pending` under a free slot; None when every slot tried is in flight.
    pub(super) fn register(&self, pending: Pending) -> Option<Slot> {
        let slots = u32::from(self.identifiers) << 16;
        pending::register(&self.pending, &self.next, slots, pending)
    }

    /// The request that fills `slot`.
    pub(super) fn echo(&self, slot: Slot, token: u64) -> Echo {
        Echo {
            identifier: self.identifier.wrapping_add((slot >> 16) as u16),
            sequence: slot as u16,
            token,
        }
    }

    /// The slot a reply answers, if it carries one of our identifiers (raw sockets see
    /// every process's pings; those are none of our business).
    fn slot(&self, echo: &Echo) -> Option<Slot> {
        let offset = echo.identifier.wrapping_sub(self.identifier);
        (offset < self.identifiers).then(|| (u32::from(offset) << 16) | u32::from(echo.sequence))
    }

    pub(super) async fn send(&self, address: IpAddr, echo: Echo) -> io::Result<()> {
        let packet = packet::encode_request(self.family, echo);
        let target = SockAddr::from(SocketAddr::new(address, 0));
        let send = |socket: &Socket| socket.send_to(&packet, &target);
        self.socket
            .async_io(Interest::WRITABLE, send)
            .await
            .map(drop)
    }

    /// The receiver task: drains every datagram on each wakeup, so a burst of replies
    /// costs one wakeup, and dispatches them. Runs until a fatal socket error.
    pub(super) async fn receive(self: Arc<Self>) {
        let mut buffer = [0u8; 2048];
        let mut control = [0u8; 128];
        let mut errors = 0;
        loop {
            let mut ready = match self.socket.readable().await {
                Ok(ready) => ready,
                Err(error) => return self.fail(error),
            };
            loop {
                let received =
                    ready.try_io(|socket| receive_one(socket.get_ref(), &mut buffer, &mut control));
                match received {
                    Ok(Ok(datagram)) => {
                        errors = 0;
                        if let Some(source) = datagram.source {
                            let arrival = Arrival {
                                now: Instant::now(),
                                kernel: datagram.kernel_time,
                            };
                            self.dispatch(&buffer[..datagram.len], source, arrival);
                        }
                    }
                    Ok(Err(error)) if error.kind() == io::ErrorKind::Interrupted => {}
                    Ok(Err(error)) if is_fatal(&error) || errors >= MAX_RECEIVE_ERRORS => {
                        return self.fail(error);
                    }
                    Ok(Err(error)) => {
                        errors += 1;
                        tracing::debug!(%error, family = ?self.family, "ICMP receive error");
                    }
                    // Drained; `try_io` cleared the readiness, wait for the next wakeup.
                    Err(_would_block) => break,
                }
            }
        }
    }

    fn dispatch(&self, datagram: &[u8], source: IpAddr, arrival: Arrival) {
        let Some(echo) = packet::decode_reply(self.family, datagram, self.ip_header) else {
            return;
        };
        let Some(slot) = self.slot(&echo) else {
            return;
        };
        match pending::credit(&self.pending, slot, echo, source.to_canonical(), arrival) {
            Some(waiter) => {
                self.counters.replies_received.inc();
                waiter.notify.notify_one();
            }
            None => {
                self.counters.replies_ignored.inc();
            }
        }
    }

    fn fail(&self, error: io::Error) {
        tracing::error!(%error, family = ?self.family, "ICMP receiver stopped");
        self.failed.store(true, Relaxed);
    }
}

/// One datagram as `recvmsg` gave it.
struct Datagram {
    len: usize,
    source: Option<IpAddr>,
    /// `SCM_TIMESTAMPNS`: when the kernel took the packet in (wall clock).
    kernel_time: Option<SystemTime>,
}

/// Reads one datagram into `buffer`, with its source and the kernel's receive timestamp
/// from the control messages in `control`.
fn receive_one(socket: &Socket, buffer: &mut [u8], control: &mut [u8]) -> io::Result<Datagram> {
    let mut address = socket2::SockAddrStorage::zeroed();
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    // SAFETY: an all-zero msghdr is valid; every pointer put in it below outlives the
    // call, with its true length.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_namelen = address.size_of();
    // SAFETY: sockaddr_storage is this platform's storage type.
    header.msg_name =
        std::ptr::from_mut(unsafe { address.view_as::<libc::sockaddr_storage>() }).cast();
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = control.len() as _;
    // SAFETY: `header` describes live buffers (above); the fd is the socket's own.
    let len = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut header, libc::MSG_DONTWAIT) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: recvmsg filled `address` up to `msg_namelen`, within its size.
    let source = unsafe { SockAddr::new(address, header.msg_namelen) }
        .as_socket()
        .map(|a| a.ip());
    let mut kernel_time = None;
    // SAFETY: the CMSG macros walk the control bytes recvmsg wrote, bounded by
    // `msg_controllen`; a SCM_TIMESTAMPNS message carries one `timespec`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                kernel_time = SystemTime::UNIX_EPOCH
                    .checked_add(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            cmsg = libc::CMSG_NXTHDR(&header, cmsg);
        }
    }
    Ok(Datagram {
        len: len as usize,
        source,
        kernel_time,
    })
}

/// Errors that mean the socket itself is unusable.
fn is_fatal(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EBADF | libc::ENOTSOCK | libc::EFAULT | libc::EINVAL | libc::ENOTCONN)
    )
}

/// Has the kernel drop every ICMP type but echo reply before it reaches a raw socket,
/// sparing the receiver our own requests on loopback and the host's other ICMP traffic.
fn accept_only_replies(socket: &Socket, family: Family) -> io::Result<()> {
    let reply = u32::from(family.reply_type());
    match family {
        // A set bit drops that type (types 0..32).
        Family::V4 => set_option(socket, libc::SOL_RAW, ICMP_FILTER, &!(1u32 << reply)),
        // struct icmp6_filter: 256 bits, a set bit blocks that type.
        Family::V6 => {
            let mut filter = [u32::MAX; 8];
            filter[(reply >> 5) as usize] &= !(1 << (reply & 31));
            set_option(socket, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &filter)
        }
    }
}

fn set_option<T>(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` points to a live `T` of `len` bytes for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(value).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
