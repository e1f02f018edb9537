//! Talking to the feed's Redis: where it is, a connection whose every reply is awaited a
//! bounded time, the errors the relay and the reader retry on, and stream entry ids.

use std::time::Duration;

/// The stream every member writes to and reads, unless configured otherwise.
pub const DEFAULT_STREAM: &str = "wardops:events";

/// Where the feed is and how long any Redis call may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSettings {
    /// `redis://host:port/db`.
    pub redis_url: String,
    /// The stream key (tests use their own, so they share one server).
    pub stream: String,
    /// Approximate length the relay trims the stream to (`MAXLEN ~`).
    pub maxlen: usize,
    /// Bound of every Redis call (and of connecting); a blocking read waits this long on
    /// top of its block time.
    pub timeout: Duration,
}

impl FeedSettings {
    pub fn new(redis_url: impl Into<String>) -> FeedSettings {
        FeedSettings {
            redis_url: redis_url.into(),
            stream: DEFAULT_STREAM.into(),
            maxlen: 100_000,
            timeout: Duration::from_secs(2),
        }
    }
}

/// What went wrong talking to Redis or PostgreSQL; the tasks log it and retry.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis: {0} timed out")]
    Timeout(&'static str),
    #[error("postgres: {0}")]
    Db(#[from] sqlx::Error),
}

/// `fut` (a Redis call named `what`) bounded by `limit`.
pub(crate) async fn timed<T>(
    what: &'static str,
    limit: Duration,
    fut: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, FeedError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(FeedError::Timeout(what)),
    }
}

/// A new connection to the feed's server whose every reply is awaited at most
/// `response` (the reader's blocking reads need longer than other calls).
pub(crate) async fn connect(
    settings: &FeedSettings,
    response: Duration,
) -> Result<redis::aio::MultiplexedConnection, FeedError> {
    let client = redis::Client::open(settings.redis_url.as_str())?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(settings.timeout))
        .set_response_timeout(Some(response));
    timed(
        "connect",
        settings.timeout + Duration::from_millis(500),
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
}

/// A stream entry id (`ms-seq`), ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntryId(pub u64, pub u64);

impl EntryId {
    pub fn parse(text: &str) -> Option<EntryId> {
        let (ms, seq) = text.split_once('-').unwrap_or((text, "0"));
        Some(EntryId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}
