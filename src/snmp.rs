//! SNMP: reading a router's interfaces table (IF-MIB) from its agent, the ground the ISP
//! uplinks of issue #19 stand on. This module owns the wire and the words for what went
//! wrong; which interface is an uplink is [`uplink`]'s, and when to poll is the poller's
//! (not built yet).
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
    Auth, Client, EngineCache, OidOrdering, Retry, UdpHandle, UdpTransport, UsmConfig, WalkMethod,
    WalkOptions,
};

/// The SNMP port agents listen on unless the inventory says otherwise.
pub const DEFAULT_PORT: u16 = 161;

/// More rows than this in one column is not a router we understand (a runaway agent or a
/// loop); the walk stops there instead of growing without bound.
pub const MAX_INTERFACES: usize = 10_000;

/// Rows asked for per GETBULK: 25 rows of one column fit well inside a 1,500-byte frame
/// even with 64-character aliases, so answers are not fragmented.
const MAX_REPETITIONS: u32 = 25;

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
        let walk = WalkOptions {
            method: WalkMethod::GetBulk,
            max_repetitions: MAX_REPETITIONS,
            ordering: OidOrdering::Strict,
            result_limit: Some(MAX_INTERFACES),
        };
        let v2c = matches!(agent.credentials, Credentials::V2c { .. });
        let client = Client::builder(
            SocketAddr::new(agent.address, agent.port),
            agent.credentials.auth()?,
        )
        .request_timeout(agent.timeout)
        .retry(retry)
        .walk_options(walk)
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
    /// The columns are walked at once (GETBULK each), so a silent agent costs one
    /// timeout × (retries + 1), not seven.
    pub async fn interfaces(&self) -> Result<Vec<Interface>, ReadError> {
        let walks = table::Column::ALL.iter().map(|&column| async move {
            let rows = self.client.walk(column.oid())?.collect().await?;
            Ok::<_, Box<async_snmp::Error>>((column, rows))
        });
        let columns = futures_util::future::try_join_all(walks)
            .await
            .map_err(|e| ReadError::from_snmp(&e, self.v2c))?;
        table::assemble(&columns)
    }
}
