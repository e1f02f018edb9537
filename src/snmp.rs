//! SNMP: reading a router's interfaces table (IF-MIB) from its agent, the ground the ISP
//! uplinks of issue #19 stand on. This module owns the wire and the words for what went
//! wrong; which interface is an uplink is [`uplink`]'s, and when to poll is the poller's
//! (`crate::schedule::uplinks`).
//!
//! - [`Reader`]: the shared UDP sockets, one per address family, and the v3 engine cache.
//!   Every agent's [`Session`] is a handle on them, so thousands of agents cost two sockets
//!   and one receive task, not a socket each.
//! - [`Session`]: one [`Agent`] (address, port, credentials, timeout, retries). Meant to be
//!   kept across polls: a v3 user's keys are localised and the agent's engine discovered
//!   once, not on every read.
//! - [`table`]: the interfaces table assembled from the walked columns (pure).
//! - [`error`]: what went wrong, in the words an operator sees as `unknown: <reason>`.
//! - [`uplink`]: picking an interface by a matcher, ifAlias patterns to ISP names (pure).
//!
//! # Why `async-snmp`
//! It is async on tokio, which the appliance already runs on; its `UdpTransport` is one
//! socket shared by any number of per-agent clients, correlated by request id (the ICMP
//! prober's design, `probe`); and its v3 USM has SHA-2 authentication (RFC 7860) and AES
//! privacy (RFC 3826), with typed Reports (unknown user, wrong digest, decryption error)
//! that become distinct reasons here. `snmp2` is synchronous first, and its
//! `AsyncSession` owns a UDP socket each and is borrowed `&mut` per request, so thousands
//! of agents would be thousands of sockets; `csnmp` is community-based (v1/v2c) only,
//! which rules out the bank's v3 routers.

pub mod error;
pub mod table;
pub mod uplink;

pub use error::ReadError;
pub use table::{AdminStatus, Interface, OperStatus};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_snmp::{
    Auth, Client, EngineCache, ErrorStatus, Retry, UdpHandle, UdpTransport, UsmConfig,
};

/// The SNMP port agents listen on unless the inventory says otherwise.
pub const DEFAULT_PORT: u16 = 161;

/// More rows than this in one column is not a router we understand (a runaway agent or a
/// loop); the walk stops there instead of growing without bound.
pub const MAX_INTERFACES: usize = 10_000;

/// Rows asked for per GETBULK, of all 7 columns at once (see [`Session::interfaces`]): 42
/// varbinds. A branch router's row (`Gi0/0/0`, `GigabitEthernet0/0/0`, a 12-character
/// alias, two statuses, two 64-bit counters) is about 175 bytes of BER, so 6 rows are
/// about 1,050 bytes, and with v3's header (SHA-512 digest, AES salt, engine id: under
/// 200 bytes) the answer still fits one 1,500-byte frame unfragmented. A router with up
/// to 5 interfaces is therefore one request: 5 rows and the step past each column's end.
/// Rows with 64-character descriptions and aliases (about 270 bytes) may not fit; an
/// agent then trims its answer (RFC 3416 §4.2.3) or says tooBig, and both are handled.
const MAX_REPETITIONS: u32 = 6;

/// One agent to read: where it is and how to talk to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub address: IpAddr,
    pub port: u16,
    pub credentials: Credentials,
    /// How long to wait for each answer before sending again.
    pub timeout: Duration,
    /// How many times a request is sent again after a timeout.
    pub retries: u32,
}

/// How the agent authenticates us.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// SNMPv2c: a community string, cleartext on the wire.
    V2c { community: String },
    /// SNMPv3 USM with SHA-2 authentication and, optionally, AES privacy.
    V3 {
        user: String,
        auth: AuthProtocol,
        auth_key: String,
        privacy: Option<(PrivProtocol, String)>,
    },
}

// Secrets never reach a log line through `{:?}`.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::V2c { .. } => f.write_str("V2c { community: *** }"),
            Credentials::V3 {
                user,
                auth,
                privacy,
                ..
            } => write!(
                f,
                "V3 {{ user: {user:?}, auth: {auth:?}, privacy: {:?} }}",
                privacy.as_ref().map(|(p, _)| p)
            ),
        }
    }
}

/// SHA-2 HMACs of RFC 7860; MD5 and SHA-1 are left out on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthProtocol {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// AES privacy (RFC 3826 for 128 bits). For 192 and 256 bits the localised key is
/// extended the Blumenthal way (net-snmp's `AES-192`/`AES-256`) where the digest is too
/// short; with SHA-256 and longer digests no extension happens at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivProtocol {
    Aes128,
    Aes192,
    Aes256,
}

impl Credentials {
    fn auth(&self) -> Result<Auth, ReadError> {
        Ok(match self {
            Credentials::V2c { community } => Auth::v2c(community.as_str()),
            Credentials::V3 {
                user,
                auth,
                auth_key,
                privacy,
            } => {
                let auth = match auth {
                    AuthProtocol::Sha224 => async_snmp::AuthProtocol::Sha224,
                    AuthProtocol::Sha256 => async_snmp::AuthProtocol::Sha256,
                    AuthProtocol::Sha384 => async_snmp::AuthProtocol::Sha384,
                    AuthProtocol::Sha512 => async_snmp::AuthProtocol::Sha512,
                };
                let usm = UsmConfig::new(user.clone().into_bytes());
                let usm = match privacy {
                    None => usm.auth(auth, auth_key),
                    Some((protocol, key)) => {
                        let protocol = match protocol {
                            PrivProtocol::Aes128 => async_snmp::PrivProtocol::Aes128,
                            PrivProtocol::Aes192 => async_snmp::PrivProtocol::Aes192Blumenthal,
                            PrivProtocol::Aes256 => async_snmp::PrivProtocol::Aes256Blumenthal,
                        };
                        usm.auth_priv(auth, auth_key, protocol, key)
                    }
                };
                Auth::from(usm.map_err(|e| ReadError::Credentials(e.to_string()))?)
            }
        })
    }
}

/// The sockets every session sends from. Cheap to share: hand out `Arc<Reader>`.
pub struct Reader {
    v4: UdpTransport,
    /// None where the host has no IPv6 (a container without it): IPv4 agents still work.
    v6: Option<UdpTransport>,
    engines: Arc<EngineCache>,
}

impl Reader {
    /// Binds one UDP socket per address family on an ephemeral port.
    pub async fn bind() -> std::io::Result<Reader> {
        let v4 = UdpTransport::bind("0.0.0.0:0")
            .await
            .map_err(|e| std::io::Error::other(format!("snmp: bind 0.0.0.0:0: {e}")))?;
        let v6 = UdpTransport::bind("[::]:0").await.ok();
        Ok(Reader {
            v4,
            v6,
            engines: Arc::new(EngineCache::new()),
        })
    }

    /// A session with one agent on this reader's sockets. No packet is sent yet.
    pub async fn session(&self, agent: &Agent) -> Result<Session, ReadError> {
        let transport = match agent.address {
            IpAddr::V4(_) => &self.v4,
            IpAddr::V6(_) => self
                .v6
                .as_ref()
                .ok_or_else(|| ReadError::Transport("no IPv6 socket on this host".to_string()))?,
        };
        // Retries beyond the crate's bound are a config mistake; the bound still holds.
        let retries = agent.retries.min(async_snmp::MAX_RETRIES);
        let retry = Retry::fixed(retries, Duration::ZERO)
            .map_err(|e| ReadError::Credentials(e.to_string()))?;
        let v2c = matches!(agent.credentials, Credentials::V2c { .. });
        let client = Client::builder(
            SocketAddr::new(agent.address, agent.port),
            agent.credentials.auth()?,
        )
        .request_timeout(agent.timeout)
        .retry(retry)
        .engine_cache(self.engines.clone())
        // RFC 3414 sends the credential failures (unknown user, wrong digest, decryption
        // error) as Reports without authentication: the agent cannot sign with a key it
        // could not verify. The crate drops those on an authenticated session unless
        // this is on, and a wrong key would look like silence. Responses carrying data
        // must still match our security level (the crate rejects any other), so a forged
        // packet can at most turn a read into an `unknown` reason, never a false up or
        // down; the one time-window correction it also allows is still followed by an
        // authenticated exchange.
        .allow_unauthenticated_v3_time_correction(true)
        // Off-target datagrams are dropped, which takes away most of that forging; a
        // multihomed agent answering from another address reads as no answer.
        .strict_source(true)
        .build_with(transport)
        .await
        .map_err(|e| ReadError::from_snmp(&e, v2c))?;
        Ok(Session { client, v2c })
    }

    /// Reads one agent's interfaces with a session made for this read only. A poller
    /// keeps its sessions instead (see [`Session`]).
    pub async fn read_interfaces(&self, agent: &Agent) -> Result<Vec<Interface>, ReadError> {
        self.session(agent).await?.interfaces().await
    }
}

/// One agent, on a [`Reader`]'s socket.
pub struct Session {
    client: Client<UdpHandle>,
    /// For v2c a wrong community is silence, so a timeout names it as a possible cause.
    v2c: bool,
}

impl Session {
    /// The interfaces table: every ifIndex with its names, states and octet counters.
    ///
    /// # Why one GETBULK for all columns
    /// The 7 columns are read side by side ([`table::ColumnWalk`]): each request is one
    /// GETBULK with a varbind per column still open, [`MAX_REPETITIONS`] rows each,
    /// continuing every column from its last row. Walking each column on its own cost
    /// a branch router 7 requests and 7 answers per poll (and each walk's step past
    /// its column's end), for a table of a handful of rows; at 10,000 routers every
    /// 30 s that is 2,300 datagrams a second each way instead of 330, and as much
    /// work for the routers' agents, whose CPU is the routing CPU. A router with up to
    /// 5 interfaces is now one request per poll; a larger table continues where
    /// each column stood (60 rows: 11 requests instead of 21). A silent agent
    /// still costs one timeout × (retries + 1).
    pub async fn interfaces(&self) -> Result<Vec<Interface>, ReadError> {
        let mut walk = table::ColumnWalk::new(&table::Column::ALL, MAX_INTERFACES);
        let mut repetitions = MAX_REPETITIONS;
        while !walk.is_done() {
            let oids = walk.next_request();
            match self.client.get_bulk(&oids, 0, repetitions).await {
                Ok(varbinds) => walk.absorb(varbinds)?,
                // An agent that says tooBig instead of trimming its answer: ask for
                // fewer rows at the same place, down to one (as the crate's walk does).
                Err(e)
                    if repetitions > 1
                        && matches!(
                            e.exchange_source(),
                            async_snmp::Error::Snmp {
                                status: ErrorStatus::TooBig,
                                ..
                            }
                        ) =>
                {
                    repetitions = (repetitions / 2).max(1);
                }
                Err(e) => return Err(ReadError::from_snmp(&e, self.v2c)),
            }
        }
        table::assemble(&walk.into_columns())
    }
}
