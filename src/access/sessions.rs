//! Page sessions: a random id in an HttpOnly cookie, kept here by its SHA-256 digest
//! (a leaked memory dump or a timing probe of the map yields no usable id), with an
//! idle and an absolute expiry and a CSRF token of its own. In memory: a restart logs
//! everybody out, which is the safe side.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::{Role, Scope};

/// The session cookie's name.
pub const COOKIE: &str = "wardops_session";

/// Most sessions kept at once; beyond it the one idle longest is dropped. A NOC has
/// dozens of screens; this bounds what a login loop can make us hold.
pub const MAX_SESSIONS: usize = 10_000;

/// Who a session is: a user of the users file (role and scope re-read from it on every
/// request, so a demotion or removal takes effect at once), or one signed in elsewhere
/// (OpenID Connect) with the role and scope its claims gave.
#[derive(Debug, Clone)]
pub enum Identity {
    Local,
    External { role: Role, scope: Scope },
}

#[derive(Debug, Clone)]
pub struct Session {
    pub user: Arc<str>,
    pub identity: Identity,
    /// Sent back with every form and state-changing request of this session.
    pub csrf: Arc<str>,
    created: Instant,
    last_seen: Instant,
}

pub struct Sessions {
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
    idle: Duration,
    absolute: Duration,
}

impl Sessions {
    pub fn new(idle: Duration, absolute: Duration) -> Sessions {
        Sessions {
            by_digest: Mutex::new(HashMap::new()),
            idle,
            absolute,
        }
    }

    /// A new session for `user`: returns its id (the cookie's value) and the session.
    pub fn create(&self, user: Arc<str>, identity: Identity) -> (String, Session) {
        let id = random_token();
        let now = Instant::now();
        let session = Session {
            user,
            identity,
            csrf: random_token().into(),
            created: now,
            last_seen: now,
        };
        let mut map = self.by_digest.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| self.alive(s, now));
            if map.len() >= MAX_SESSIONS
                && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        map.insert(digest(&id), session.clone());
        (id, session)
    }

    /// The live session `id` names, its idle clock restarted; None when unknown or
    /// expired (an expired one is forgotten).
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.by_digest.lock();
        let key = digest(id);
        let session = map.get_mut(&key)?;
        if !self.alive(session, now) {
            map.remove(&key);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    /// Ends session `id` (logout).
    pub fn remove(&self, id: &str) {
        self.by_digest.lock().remove(&digest(id));
    }

    /// Ends every session of `user` (removed from the users file).
    pub fn remove_user(&self, user: &str) {
        self.by_digest.lock().retain(|_, s| &*s.user != user);
    }

    pub fn len(&self) -> usize {
        self.by_digest.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Seconds until a session made now ends however busy: the cookie's `Max-Age`.
    pub fn absolute(&self) -> Duration {
        self.absolute
    }

    fn alive(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) < self.idle && now.duration_since(s.created) < self.absolute
    }
}

/// 32 random bytes from rand's thread generator (a CSPRNG seeded by the OS), URL-safe
/// base64 (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> Sessions {
        Sessions::new(Duration::from_secs(60), Duration::from_secs(300))
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_ends_when_idle_and_at_its_absolute_expiry() {
        let s = sessions();
        let (id, made) = s.create("alice".into(), Identity::Local);
        assert_eq!(id.len(), 43);
        assert_ne!(&*made.csrf, id);
        // Busy: every 50 s, under the idle limit, until the absolute one.
        for _ in 0..5 {
            tokio::time::advance(Duration::from_secs(50)).await;
            assert!(s.get(&id).is_some());
        }
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(s.get(&id).is_none(), "past the absolute expiry");
        let (id, _) = s.create("alice".into(), Identity::Local);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(s.get(&id).is_none(), "idle too long");
        assert!(s.is_empty(), "an expired session is forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn logout_and_removed_users_end_sessions() {
        let s = sessions();
        let (a, _) = s.create("alice".into(), Identity::Local);
        let (b, _) = s.create("bob".into(), Identity::Local);
        assert!(s.get("not-a-session").is_none());
        s.remove(&a);
        assert!(s.get(&a).is_none());
        s.remove_user("bob");
        assert!(s.get(&b).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_table_is_bounded() {
        let s = Sessions::new(Duration::from_secs(3600), Duration::from_secs(3600));
        let (first, _) = s.create("u".into(), Identity::Local);
        tokio::time::advance(Duration::from_secs(1)).await;
        for _ in 1..MAX_SESSIONS {
            s.create("u".into(), Identity::Local);
        }
        let (last, _) = s.create("u".into(), Identity::Local);
        assert_eq!(s.len(), MAX_SESSIONS);
        assert!(s.get(&first).is_none(), "the longest idle went");
        assert!(s.get(&last).is_some());
    }
}
