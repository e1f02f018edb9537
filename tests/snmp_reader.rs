//! The SNMP reader against a real agent (snmpsim on loopback, a recorded branch router):
//! both uplinks with their states and counters over v2c and over v3 (SHA-256 + AES-128);
//! a wrong community, a wrong v3 user, auth key or priv key, and a silent agent each a
//! clear reason within the timeout; an agent answering nonsense is a malformed answer
//! (or silence), never a panic; a line going down is seen on the next read; a branch
//! router's poll is one request, and a table larger than one answer is read whole.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wardops::snmp::uplink::{self, AliasRule, Matcher};
use wardops::snmp::{
    Agent, AuthProtocol, Credentials, Interface, OperStatus, PrivProtocol, ReadError, Reader,
};

use support::snmpsim::{self, Snmpsim};

const TIMEOUT: Duration = Duration::from_millis(500);
const RETRIES: u32 = 1;
/// timeout × (retries + 1), and room for a slow shared CI machine.
const WITHIN: Duration = Duration::from_secs(3);

fn agent(port: u16, credentials: Credentials) -> Agent {
    Agent {
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
        credentials,
        timeout: TIMEOUT,
        retries: RETRIES,
    }
}

fn v2c(community: &str) -> Credentials {
    Credentials::V2c {
        community: community.to_string(),
    }
}

fn v3(user: &str, auth_key: &str, priv_key: &str) -> Credentials {
    Credentials::V3 {
        user: user.to_string(),
        auth: AuthProtocol::Sha256,
        auth_key: auth_key.to_string(),
        privacy: Some((PrivProtocol::Aes128, priv_key.to_string())),
    }
}

fn good_v3() -> Credentials {
    v3(snmpsim::V3_USER, snmpsim::V3_AUTH_KEY, snmpsim::V3_PRIV_KEY)
}

/// Reads once and checks it took no longer than the timeout allows.
async fn read(reader: &Reader, agent: &Agent) -> Result<Vec<Interface>, ReadError> {
    let started = Instant::now();
    let result = reader.read_interfaces(agent).await;
    assert!(
        started.elapsed() < WITHIN,
        "a read took {:?}: {result:?}",
        started.elapsed()
    );
    result
}

fn oper_of(interfaces: &[Interface], name: &str) -> Option<OperStatus> {
    uplink::pick(interfaces, &Matcher::Name(name.into()))?.oper
}

/// What every good read of the recorded router shows.
fn assert_branch_router(interfaces: &[Interface]) {
    assert_eq!(interfaces.len(), 4, "{interfaces:#?}");
    let rules = [
        AliasRule::new("*MAGTI*", "Magti"),
        AliasRule::new("*silknet*", "Silknet"),
    ];
    let uplinks: Vec<(&str, &Interface)> = interfaces
        .iter()
        .filter_map(|i| Some((uplink::isp_for_alias(&rules, i.alias.as_deref()?)?, i)))
        .collect();
    assert_eq!(uplinks.len(), 2, "{uplinks:#?}");
    let (isp, magti) = uplinks[0];
    assert_eq!(isp, "Magti");
    assert_eq!(magti.index, 1);
    assert_eq!(magti.name.as_deref(), Some("Gi0/0"));
    assert_eq!(magti.descr.as_deref(), Some("GigabitEthernet0/0"));
    assert_eq!(magti.admin, Some(wardops::snmp::AdminStatus::Up));
    assert_eq!(magti.oper, Some(OperStatus::Up));
    assert_eq!(magti.in_octets, Some(987_654_321_012));
    assert_eq!(magti.out_octets, Some(123_456_789_012));
    let (isp, silknet) = uplinks[1];
    assert_eq!(isp, "Silknet");
    assert_eq!(silknet.name.as_deref(), Some("Gi0/1"));
    assert_eq!(silknet.oper, Some(OperStatus::Up));
    assert_eq!(silknet.in_octets, Some(55_000_000_001));
    // The admin-down port reads as such, not as a line that failed.
    let spare = uplink::pick(interfaces, &Matcher::Alias("spare".into())).unwrap();
    assert_eq!(spare.admin, Some(wardops::snmp::AdminStatus::Down));
    assert_eq!(spare.oper, Some(OperStatus::Down));
    assert_eq!(
        uplink::pick(interfaces, &Matcher::Index(3))
            .unwrap()
            .descr
            .as_deref(),
        Some("Loopback0")
    );
}

#[tokio::test]
async fn v2c_reads_both_uplinks_with_states_and_counters() {
    let sim = Snmpsim::start(&snmpsim::branch_router());
    let reader = Reader::bind().await.unwrap();
    let interfaces = read(&reader, &agent(sim.port, v2c(snmpsim::COMMUNITY)))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sim.log()));
    assert_branch_router(&interfaces);
}

#[tokio::test]
async fn v3_sha256_aes128_reads_the_same() {
    let sim = Snmpsim::start(&snmpsim::branch_router());
    let reader = Reader::bind().await.unwrap();
    let interfaces = read(&reader, &agent(sim.port, good_v3()))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sim.log()));
    assert_branch_router(&interfaces);
}

#[tokio::test]
async fn a_wrong_community_is_silence_and_says_so() {
    let sim = Snmpsim::start(&snmpsim::branch_router());
    let reader = Reader::bind().await.unwrap();
    let error = read(&reader, &agent(sim.port, v2c("not-public")))
        .await
        .unwrap_err();
    assert_eq!(error, ReadError::NoAnswer { v2c: true });
    assert_eq!(
        format!("unknown: {error}"),
        "unknown: no answer (agent down or wrong community)"
    );
}

#[tokio::test]
async fn wrong_v3_user_auth_key_and_priv_key_each_have_their_reason() {
    let sim = Snmpsim::start(&snmpsim::branch_router());
    let reader = Reader::bind().await.unwrap();
    let cases = [
        (
            v3("nobody", snmpsim::V3_AUTH_KEY, snmpsim::V3_PRIV_KEY),
            ReadError::UnknownUser,
        ),
        (
            v3(snmpsim::V3_USER, "wrong-auth-key", snmpsim::V3_PRIV_KEY),
            ReadError::WrongAuthKey,
        ),
        (
            v3(snmpsim::V3_USER, snmpsim::V3_AUTH_KEY, "wrong-priv-key"),
            ReadError::WrongPrivKey,
        ),
    ];
    for (credentials, want) in cases {
        let got = read(&reader, &agent(sim.port, credentials.clone())).await;
        assert_eq!(got.as_ref().err(), Some(&want), "{credentials:?}: {got:?}");
    }
    // The agent is still fine for the right credentials on the same socket.
    assert_branch_router(&read(&reader, &agent(sim.port, good_v3())).await.unwrap());
}

#[tokio::test]
async fn a_silent_agent_is_no_answer_within_the_timeout() {
    // A bound socket nobody reads: requests vanish, as into a dead line (no ICMP
    // port-unreachable either, which a closed port would send).
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let reader = Reader::bind().await.unwrap();
    let started = Instant::now();
    let error = read(&reader, &agent(port, v2c(snmpsim::COMMUNITY)))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "no answer (agent down or wrong community)"
    );
    // It did wait for the retries: timeout × (retries + 1).
    assert!(
        started.elapsed() >= TIMEOUT * (RETRIES + 1),
        "{:?}",
        started.elapsed()
    );
    let error = read(&reader, &agent(port, good_v3())).await.unwrap_err();
    assert_eq!(error.to_string(), "no answer (agent down)");
}

#[tokio::test]
async fn a_line_going_down_is_seen_on_the_next_read() {
    let mut rows = snmpsim::branch_router();
    let sim = Snmpsim::start(&rows);
    let reader = Reader::bind().await.unwrap();
    let v2c_agent = agent(sim.port, v2c(snmpsim::COMMUNITY));
    let v3_session = reader.session(&agent(sim.port, good_v3())).await.unwrap();
    assert_eq!(
        oper_of(&read(&reader, &v2c_agent).await.unwrap(), "Gi0/1"),
        Some(OperStatus::Up)
    );
    assert_eq!(
        oper_of(&v3_session.interfaces().await.unwrap(), "Gi0/1"),
        Some(OperStatus::Up)
    );

    rows[1].oper = 2; // Silknet's line drops
    rows[1].in_octets += 1_000;
    sim.rewrite(&rows);
    let after = read(&reader, &v2c_agent).await.unwrap();
    assert_eq!(
        oper_of(&after, "Gi0/1"),
        Some(OperStatus::Down),
        "{}",
        sim.log()
    );
    assert_eq!(oper_of(&after, "Gi0/0"), Some(OperStatus::Up));
    assert_eq!(
        uplink::pick(&after, &Matcher::Index(2)).unwrap().in_octets,
        Some(55_000_001_001)
    );
    // A kept v3 session sees it too, without a new discovery.
    assert_eq!(
        oper_of(&v3_session.interfaces().await.unwrap(), "Gi0/1"),
        Some(OperStatus::Down)
    );

    rows[1].oper = 1; // and comes back
    sim.rewrite(&rows);
    assert_eq!(
        oper_of(&read(&reader, &v2c_agent).await.unwrap(), "Gi0/1"),
        Some(OperStatus::Up)
    );
}

#[tokio::test]
async fn an_agent_answering_the_wrong_types_is_a_malformed_answer() {
    let records = snmpsim::snmprec(&snmpsim::branch_router())
        .replace("1.3.6.1.2.1.2.2.1.8.2|2|1", "1.3.6.1.2.1.2.2.1.8.2|4|up");
    let sim = Snmpsim::start_records(&records);
    let reader = Reader::bind().await.unwrap();
    let error = read(&reader, &agent(sim.port, v2c(snmpsim::COMMUNITY)))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "malformed answer: ifOperStatus.2 has type octet_string"
    );
}

#[tokio::test]
async fn garbage_datagrams_are_no_panic_and_a_clear_reason() {
    // A fake agent answering every request with a mangled copy of it: truncated, bytes
    // flipped, or its first bytes only.
    let fake = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = fake.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut n_sent = 0u32;
        while let Ok((n, from)) = fake.recv_from(&mut buf) {
            let mut answer = buf[..n].to_vec();
            match n_sent % 3 {
                0 => answer.truncate(n / 2),
                1 => answer
                    .iter_mut()
                    .skip(5)
                    .step_by(7)
                    .for_each(|b| *b ^= 0x5a),
                _ => answer.truncate(3),
            }
            n_sent += 1;
            let _ = fake.send_to(&answer, from);
        }
    });
    let reader = Reader::bind().await.unwrap();
    for credentials in [v2c(snmpsim::COMMUNITY), good_v3()] {
        let error = read(&reader, &agent(port, credentials)).await.unwrap_err();
        assert!(
            matches!(error, ReadError::NoAnswer { .. } | ReadError::Malformed(_)),
            "{error:?}"
        );
    }
}

/// A UDP relay between the reader and the agent that counts the requests passing through:
/// what the agent sees is what the relay counts.
struct CountingRelay {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl CountingRelay {
    fn start(agent_port: u16) -> CountingRelay {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = front.local_addr().unwrap().port();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(("127.0.0.1", agent_port)).unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
        {
            let (front, back) = (front.try_clone().unwrap(), back.try_clone().unwrap());
            let (requests, client) = (requests.clone(), client.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 65_536];
                while let Ok((n, from)) = front.recv_from(&mut buf) {
                    *client.lock().unwrap() = Some(from);
                    requests.fetch_add(1, Ordering::SeqCst);
                    let _ = back.send(&buf[..n]);
                }
            });
        }
        std::thread::spawn(move || {
            let mut buf = [0u8; 65_536];
            while let Ok(n) = back.recv(&mut buf) {
                if let Some(to) = *client.lock().unwrap() {
                    let _ = front.send_to(&buf[..n], to);
                }
            }
        });
        CountingRelay { port, requests }
    }

    fn take(&self) -> usize {
        self.requests.swap(0, Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_poll_of_a_four_interface_router_is_one_request() {
    let sim = Snmpsim::start(&snmpsim::branch_router());
    let relay = CountingRelay::start(sim.port);
    let reader = Reader::bind().await.unwrap();
    let session = reader
        .session(&agent(relay.port, v2c(snmpsim::COMMUNITY)))
        .await
        .unwrap();
    assert_eq!(relay.take(), 0, "a session sends nothing until it reads");
    for _ in 0..3 {
        assert_branch_router(&session.interfaces().await.unwrap());
        assert_eq!(relay.take(), 1, "one GETBULK for all 7 columns");
    }
    // A kept v3 session: discovery once, then one request per poll too.
    let session = reader.session(&agent(relay.port, good_v3())).await.unwrap();
    assert_branch_router(&session.interfaces().await.unwrap());
    relay.take();
    assert_branch_router(&session.interfaces().await.unwrap());
    assert_eq!(relay.take(), 1);
}

#[tokio::test]
async fn a_table_larger_than_one_answer_is_read_whole() {
    // 60 interfaces: 10 answers of 6 rows, and the step past the end.
    let names: Vec<&'static str> = (1..=60)
        .map(|i| &*Box::leak(format!("Gi0/{i}").into_boxed_str()))
        .collect();
    let descrs: Vec<&'static str> = (1..=60)
        .map(|i| &*Box::leak(format!("GigabitEthernet0/{i}").into_boxed_str()))
        .collect();
    let rows: Vec<snmpsim::Row> = (1..=60u32)
        .map(|i| snmpsim::Row {
            index: i,
            name: names[i as usize - 1],
            descr: descrs[i as usize - 1],
            alias: match i {
                7 => "MAGTI-uplink",
                59 => "SILKNET-uplink",
                _ => "access",
            },
            admin: 1,
            oper: if i.is_multiple_of(3) { 2 } else { 1 },
            in_octets: 1_000_000_000_000 + i as u64,
            out_octets: 2_000_000_000_000 + i as u64,
        })
        .collect();
    let sim = Snmpsim::start(&rows);
    let relay = CountingRelay::start(sim.port);
    let reader = Reader::bind().await.unwrap();
    for credentials in [v2c(snmpsim::COMMUNITY), good_v3()] {
        let interfaces = read(&reader, &agent(relay.port, credentials))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", sim.log()));
        assert_eq!(interfaces.len(), 60);
        for (i, interface) in interfaces.iter().enumerate() {
            let index = i as u32 + 1;
            assert_eq!(interface.index, index);
            assert_eq!(interface.name.as_deref(), Some(names[i]));
            assert_eq!(interface.descr.as_deref(), Some(descrs[i]));
            assert_eq!(interface.admin, Some(wardops::snmp::AdminStatus::Up));
            let oper = if index.is_multiple_of(3) {
                OperStatus::Down
            } else {
                OperStatus::Up
            };
            assert_eq!(interface.oper, Some(oper));
            assert_eq!(interface.in_octets, Some(1_000_000_000_000 + index as u64));
            assert_eq!(interface.out_octets, Some(2_000_000_000_000 + index as u64));
        }
        let silknet = uplink::pick(&interfaces, &Matcher::Alias("SILKNET-uplink".into()));
        assert_eq!(silknet.map(|i| i.index), Some(59));
    }
    // v2c: 11 requests; v3: the same and its discovery. Never one walk per column (21).
    let requests = relay.take();
    assert!((22..=24).contains(&requests), "{requests} requests");
}
