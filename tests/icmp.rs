//! The real ICMP pinger against loopback: every 127.0.0.0/8 address and ::1 answer on
//! Linux, and nftables rules in tables of our own make chosen addresses go dark. These
//! tests need root (raw sockets, nft, network namespaces) and touch nothing but
//! loopback and namespaces they create.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use wardops::probe::icmp::IcmpPinger;
use wardops::probe::{Pinger, ProbeSpec};

fn spec(packets: u32, timeout_ms: u64) -> ProbeSpec {
    ProbeSpec {
        packets,
        spacing: Duration::from_millis(20),
        timeout: Duration::from_millis(timeout_ms),
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// An nftables table of this test's own, deleted on drop even when the test panics.
struct Blackhole {
    table: String,
}

impl Blackhole {
    /// `chains` are (hook, address): echo requests to `address` are dropped at that hook.
    /// Dropped on `output`, the send itself fails (EPERM); on `input`, the request leaves
    /// fine and no reply ever comes.
    fn new(test: &str, chains: &[(&str, &str)]) -> Blackhole {
        let table = format!("wardops_icmp_test_{}_{test}", std::process::id());
        let mut script = format!("table inet {table} {{\n");
        for (hook, address) in chains {
            script += &format!(
                "chain {hook}_drop {{ type filter hook {hook} priority 0; policy accept; \
                 ip daddr {address} icmp type echo-request drop; }}\n"
            );
        }
        script += "}\n";
        let guard = Blackhole { table };
        nft(&["-f", "-"], &script);
        guard
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        nft(&["delete", "table", "inet", &self.table], "");
    }
}

fn nft(args: &[&str], stdin: &str) {
    use std::io::Write;
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("nft is needed for these tests: apt-get install -y nftables");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "nft {args:?} failed");
}

#[tokio::test]
async fn loopback_answers_on_both_families() {
    let pinger = IcmpPinger::open().expect("these tests run as root");
    assert!(pinger.is_healthy());
    for address in [v4(127, 0, 0, 1), v4(127, 3, 4, 5), "::1".parse().unwrap()] {
        let outcome = pinger.probe(address, spec(3, 1000)).await;
        assert_eq!((outcome.sent, outcome.received), (3, 3), "{address}");
        let rtt = outcome.rtt.expect("rtt of the replies");
        assert!(
            rtt > Duration::ZERO && rtt < Duration::from_secs(1),
            "{address}: {rtt:?}"
        );
    }
    let stats = pinger.stats();
    assert_eq!(
        (
            stats.requests_sent,
            stats.replies_received,
            stats.send_errors
        ),
        (9, 9, 0)
    );
    assert!(pinger.is_healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_devices_at_once() {
    let pinger = Arc::new(IcmpPinger::open().unwrap());
    let mut probes = tokio::task::JoinSet::new();
    for n in 0..2000u16 {
        let pinger = Arc::clone(&pinger);
        let address = v4(127, 10, (n >> 8) as u8, n as u8);
        probes.spawn(async move { (address, pinger.probe(address, spec(2, 3000)).await) });
    }
    let started = Instant::now();
    while let Some(result) = probes.join_next().await {
        let (address, outcome) = result.unwrap();
        assert_eq!((outcome.sent, outcome.received), (2, 2), "{address}");
    }
    // All answered, so nobody waited for a timeout.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let stats = pinger.stats();
    assert_eq!((stats.requests_sent, stats.replies_received), (4000, 4000));
    assert!(
        pinger.in_flight(v4(127, 10, 0, 1)).is_empty(),
        "table cleaned up"
    );
}

#[tokio::test]
async fn blackholed_devices_are_unanswered() {
    let _blackhole = Blackhole::new("dark", &[("output", "127.77.1.5"), ("input", "127.77.1.8")]);
    let pinger = IcmpPinger::open().unwrap();

    // Dropped on output: the send fails, which is data about the device, not the socket.
    let outcome = pinger.probe(v4(127, 77, 1, 5), spec(2, 300)).await;
    assert_eq!((outcome.sent, outcome.received, outcome.rtt), (2, 0, None));
    assert_eq!(pinger.stats().send_errors, 2);
    assert!(pinger.is_healthy());

    // Dropped on input: sent, then nothing comes back within the timeout.
    let started = Instant::now();
    let outcome = pinger.probe(v4(127, 77, 1, 8), spec(2, 300)).await;
    assert_eq!((outcome.sent, outcome.received, outcome.rtt), (2, 0, None));
    assert!(
        started.elapsed() >= Duration::from_millis(320),
        "waited for the last timeout"
    );
    assert_eq!(pinger.stats().requests_sent, 2);

    // A neighbour of the dark addresses still answers.
    let outcome = pinger.probe(v4(127, 77, 1, 7), spec(1, 1000)).await;
    assert_eq!(outcome.received, 1);
}

/// An echo reply as a forger would build it: valid header and checksum, our payload
/// layout (token, then the magic), but a token the forger had to guess.
fn forged_reply(identifier: u16, sequence: u16, token: u64) -> Vec<u8> {
    let mut packet = vec![0u8, 0, 0, 0];
    packet.extend_from_slice(&identifier.to_be_bytes());
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(&token.to_be_bytes());
    packet.extend_from_slice(b"wardops!");
    let mut sum: u32 = packet
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    packet[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    packet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_reply_never_counts() {
    // Requests die on input, so the probe stays in flight with no genuine reply.
    let _blackhole = Blackhole::new("forged", &[("input", "127.77.1.6")]);
    let pinger = Arc::new(IcmpPinger::open().unwrap());
    let target = v4(127, 77, 1, 6);
    let probe = tokio::spawn({
        let pinger = Arc::clone(&pinger);
        async move { pinger.probe(target, spec(1, 1500)).await }
    });

    let (identifier, sequence) = loop {
        if let [request] = pinger.in_flight(target)[..] {
            break request;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let before = pinger.stats().replies_ignored;

    // From a raw socket bound to the probed address, so the source matches too.
    let forger = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap();
    forger
        .bind(&SockAddr::from(SocketAddr::new(target, 0)))
        .unwrap();
    let to = SockAddr::from(SocketAddr::new(v4(127, 0, 0, 1), 0));
    for token in [0, 0xdead_beef, u64::MAX] {
        forger
            .send_to(&forged_reply(identifier, sequence, token), &to)
            .unwrap();
    }

    // The forgeries reached the matcher (so this test is not vacuous) and were refused.
    let deadline = Instant::now() + Duration::from_secs(1);
    while pinger.stats().replies_ignored < before + 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(pinger.stats().replies_ignored, before + 3);
    assert_eq!(
        pinger.in_flight(target),
        [(identifier, sequence)],
        "the genuine reply may still come"
    );

    let outcome = probe.await.unwrap();
    assert_eq!((outcome.sent, outcome.received, outcome.rtt), (1, 0, None));
    assert_eq!(pinger.stats().replies_received, 0);
}

/// 100,000 devices at 1 s with 2 packets and a 1 s timeout keep ~200,000 echo requests in
/// flight: more than one identifier's 65,536 sequence numbers. None may fail for want of
/// a slot, and a device that answers meanwhile is still up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_thousand_requests_in_flight() {
    const DEVICES: u32 = 100_000;
    // 127.80.0.0/14 holds 262,144 addresses; none of their requests is ever answered.
    let _blackhole = Blackhole::new("inflight", &[("input", "127.80.0.0/14")]);
    let pinger = Arc::new(IcmpPinger::open().unwrap());
    let quiet = ProbeSpec {
        packets: 2,
        spacing: Duration::from_millis(50),
        timeout: Duration::from_secs(20),
    };
    let probes: Vec<_> = (0..DEVICES)
        .map(|i| {
            let pinger = Arc::clone(&pinger);
            let address = IpAddr::V4(Ipv4Addr::from(0x7f50_0000u32 + i));
            tokio::spawn(async move { pinger.probe(address, quiet).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    while pinger.in_flight_total() < 2 * DEVICES as usize {
        assert!(
            Instant::now() < deadline,
            "only {} in flight; {:?}",
            pinger.in_flight_total(),
            pinger.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = pinger.stats();
    assert_eq!(
        (stats.send_errors, stats.slots_exhausted),
        (0, 0),
        "{stats:?}"
    );
    let answered = pinger.probe(v4(127, 0, 0, 1), spec(2, 1000)).await;
    assert_eq!(answered.received, 2, "a live device stays up: {answered:?}");
    for probe in probes {
        probe.abort();
    }
}

/// Runs `wardops probe <addresses>` in a fresh network namespace (its own loopback and
/// sysctls) without CAP_NET_RAW, as an unprivileged deployment would run.
fn probe_without_cap_net_raw(ping_group_range: &str, addresses: &[&str]) -> std::process::Output {
    let script = r#"ip link set lo up && sysctl -q -w net.ipv4.ping_group_range="$1" && shift &&
        exec setpriv --inh-caps=-net_raw --bounding-set=-net_raw -- "$@""#;
    Command::new("unshare")
        .args(["--net", "--", "sh", "-c", script, "sh", ping_group_range])
        .args([env!("CARGO_BIN_EXE_wardops"), "probe", "--timeout", "1s"])
        .args(addresses)
        .output()
        .expect("unshare (util-linux)")
}

#[test]
fn datagram_sockets_when_ping_group_range_allows() {
    let out = probe_without_cap_net_raw("0 2147483647", &["127.0.0.1", "127.3.4.5", "::1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for address in ["127.0.0.1", "127.3.4.5", "::1"] {
        // The kernel rewrites the identifier of datagram sockets; replies still match.
        assert!(
            stdout.contains(&format!("{address}: 2/2 replies")),
            "{stdout}"
        );
    }
}

#[test]
fn no_socket_error_names_the_fixes() {
    let out = probe_without_cap_net_raw("1 0", &["127.0.0.1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "neither raw nor datagram ICMP allowed: {stderr}"
    );
    for fix in [
        "root",
        "setcap cap_net_raw+ep",
        "AmbientCapabilities=CAP_NET_RAW",
        "ping_group_range",
    ] {
        assert!(stderr.contains(fix), "{fix:?} missing from: {stderr}");
    }
}

/// Many devices at once through one socket: every reply finds its probe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_devices_at_once() {
    let pinger = Arc::new(IcmpPinger::open().unwrap());
    let started = Instant::now();
    let mut probes = tokio::task::JoinSet::new();
    for n in 0..20_000u32 {
        let pinger = Arc::clone(&pinger);
        let address = v4(127, 20, (n >> 8) as u8, n as u8);
        probes.spawn(async move { pinger.probe(address, spec(1, 5000)).await.received });
    }
    let mut received = 0;
    while let Some(result) = probes.join_next().await {
        received += result.unwrap();
    }
    println!(
        "20,000 probes in {:?}: {:?}",
        started.elapsed(),
        pinger.stats()
    );
    assert_eq!(received, 20_000);
}
