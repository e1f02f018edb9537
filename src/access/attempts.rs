//! Failed logins, counted per user name and per client address over a window: past the
//! limit, further attempts (password or basic auth) are refused with 429 until the
//! window that holds the first failure has passed, whether the password is right or
//! not, so guessing gains nothing by going on.

use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::rate::Counter;

#[derive(Debug)]
pub struct Attempts {
    users: Counter<String>,
    addresses: Counter<IpAddr>,
}

impl Attempts {
    pub fn new(per_user: u32, per_address: u32, window: Duration) -> Attempts {
        Attempts {
            users: Counter::new(per_user, window),
            addresses: Counter::new(per_address, window),
        }
    }

    /// `Err(retry after)` when `user` or `address` has failed too often lately.
    pub fn check(&self, user: &str, address: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let wait = [
            self.users.blocked(user, now),
            self.addresses.blocked(&address, now),
        ];
        match wait.into_iter().flatten().max() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn failed(&self, user: &str, address: IpAddr) {
        let now = Instant::now();
        self.users.add(user.to_owned(), now);
        self.addresses.add(address, now);
    }

    /// A good password clears its user's count (not the address's: one right password
    /// does not excuse a thousand wrong ones for others).
    pub fn succeeded(&self, user: &str) {
        self.users.remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const AWAY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[tokio::test(start_paused = true)]
    async fn a_user_is_locked_after_its_failures_until_the_window_passes() {
        let a = Attempts::new(3, 100, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(a.check("alice", HOME).is_ok());
            a.failed("alice", HOME);
        }
        let wait = a.check("alice", AWAY).unwrap_err();
        assert_eq!(wait, Duration::from_secs(60), "from any address");
        assert!(a.check("bob", HOME).is_ok(), "others are not locked");
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(a.check("alice", HOME), Err(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(a.check("alice", HOME).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_is_locked_whatever_names_it_tries() {
        let a = Attempts::new(100, 5, Duration::from_secs(60));
        for i in 0..5 {
            a.failed(&format!("user{i}"), AWAY);
        }
        assert!(a.check("alice", AWAY).is_err());
        assert!(a.check("alice", HOME).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn success_clears_the_user_only() {
        let a = Attempts::new(2, 3, Duration::from_secs(60));
        a.failed("alice", HOME);
        a.failed("alice", HOME);
        a.succeeded("alice");
        assert!(a.check("alice", AWAY).is_ok());
        a.failed("bob", HOME);
        assert!(a.check("carol", HOME).is_err(), "the address has 3");
    }
}
