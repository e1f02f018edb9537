//! Why a read failed, in words short enough for a badge: an uplink whose agent did not
//! answer shows `unknown: <reason>`. The crate's errors are many and detailed; an
//! operator needs to know whether to call the ISP, fix the credentials or look at the
//! router, so they fold into a handful of causes.

use async_snmp::v3::ReportStatus;
use async_snmp::{Error, WalkAbortReason};

/// A failed read of one agent. `Display` is the reason shown to an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Nothing came back within timeout × (retries + 1).
    #[error("{}", no_answer(.v2c))]
    NoAnswer {
        /// v2c agents drop a wrong community silently (RFC 3584), so for v2c silence
        /// may just as well be a wrong community.
        v2c: bool,
    },
    /// The agent knows no v3 user of this name.
    #[error("authentication failure: unknown v3 user")]
    UnknownUser,
    /// The agent's HMAC of our request did not match: the auth key (or protocol) differs.
    #[error("authentication failure: wrong v3 auth key (wrong digest)")]
    WrongAuthKey,
    /// The agent could not decrypt our request: the priv key (or protocol) differs.
    #[error("decryption error: wrong v3 priv key")]
    WrongPrivKey,
    /// The agent answered with an error of its own (an error status, another v3 report).
    #[error("refused: {0}")]
    Refused(String),
    /// The answer could not be understood: bad encoding, wrong types, rows out of order.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// The credentials cannot be used at all (e.g. a key shorter than 8 characters).
    #[error("invalid credentials: {0}")]
    Credentials(String),
    /// The local socket failed (no route, closed).
    #[error("network error: {0}")]
    Transport(String),
}

impl ReadError {
    /// Folds one of the crate's errors into a reason; `v2c` says which silence it was.
    pub(crate) fn from_snmp(error: &Error, v2c: bool) -> ReadError {
        // Shared operations (coalesced v3 discovery) and exchange metadata wrap the cause.
        match error.exchange_source() {
            Error::Timeout { .. } | Error::ConstructionTimeout { .. } => {
                ReadError::NoAnswer { v2c }
            }
            Error::Report { status, .. } => from_report(status),
            // The answer's own HMAC failed to verify: the agent signs with another key.
            Error::Auth { .. } => ReadError::WrongAuthKey,
            Error::Privacy(_) => ReadError::WrongPrivKey,
            Error::Snmp { status, .. } => ReadError::Refused(format!("agent error {status}")),
            Error::WalkAborted { reason, .. } => ReadError::Malformed(match reason {
                WalkAbortReason::ResultLimitExceeded { limit } => {
                    format!("more than {limit} rows in one column")
                }
                WalkAbortReason::NonIncreasing | WalkAbortReason::Cycle => {
                    "rows out of order".to_string()
                }
                other => short(&other.to_string()),
            }),
            Error::Decode(e) => ReadError::Malformed(short(&e.to_string())),
            Error::MalformedResponse { .. } | Error::ResponseShape { .. } => {
                ReadError::Malformed("unexpected response".to_string())
            }
            Error::InvalidMessage(m) => ReadError::Malformed(short(m)),
            Error::Config(m) => ReadError::Credentials(short(m)),
            Error::Network { source, .. } => ReadError::Transport(short(&source.to_string())),
            Error::Closed { .. } => ReadError::Transport("socket closed".to_string()),
            other => ReadError::Transport(short(&other.to_string())),
        }
    }
}

fn no_answer(v2c: &bool) -> &'static str {
    if *v2c {
        "no answer (agent down or wrong community)"
    } else {
        "no answer (agent down)"
    }
}

fn from_report(status: &ReportStatus) -> ReadError {
    match status {
        ReportStatus::UnknownUserName { .. } => ReadError::UnknownUser,
        ReportStatus::WrongDigest { .. } => ReadError::WrongAuthKey,
        ReportStatus::DecryptionError { .. } => ReadError::WrongPrivKey,
        ReportStatus::UnsupportedSecurityLevel { .. } => {
            ReadError::Refused("security level not allowed for this v3 user".to_string())
        }
        ReportStatus::NotInTimeWindow { .. } => {
            ReadError::Refused("v3 clock out of the agent's time window".to_string())
        }
        ReportStatus::UnknownEngineId { .. } => {
            ReadError::Refused("v3 engine id not recognised".to_string())
        }
        other => ReadError::Refused(short(&other.to_string())),
    }
}

/// A reason is a badge, not a log line: long library messages are cut.
fn short(text: &str) -> String {
    const MAX: usize = 100;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_an_operator_needs_them() {
        assert_eq!(
            ReadError::NoAnswer { v2c: true }.to_string(),
            "no answer (agent down or wrong community)"
        );
        assert_eq!(
            ReadError::NoAnswer { v2c: false }.to_string(),
            "no answer (agent down)"
        );
        let report = |status| Error::Report {
            target: "127.0.0.1:161".parse().unwrap(),
            status: Box::new(status),
            metadata: Box::default(),
        };
        let wrong_digest = report(ReportStatus::WrongDigest { counter: 1 });
        assert_eq!(
            ReadError::from_snmp(&wrong_digest, false),
            ReadError::WrongAuthKey
        );
        let decryption = report(ReportStatus::DecryptionError { counter: 1 });
        assert_eq!(
            ReadError::from_snmp(&decryption, false).to_string(),
            "decryption error: wrong v3 priv key"
        );
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(500);
        assert_eq!(short(&long).chars().count(), 101);
        assert_eq!(short("ok"), "ok");
    }
}
