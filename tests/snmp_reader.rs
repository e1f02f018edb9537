//! The SNMP reader against a real agent (snmpsim on loopback, a recorded branch router):
//! both uplinks with their states and counters over v2c and over v3 (SHA-256 + AES-128);
//! a wrong community, a wrong v3 user, auth key or priv key, and a silent agent each a
//! clear reason within the timeout; an agent answering nonsense is a malformed answer
//! (or silence), never a panic; a line going down is seen on the next read.

mod support;

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
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
