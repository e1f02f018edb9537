//! How often "probe now" may be asked for: once per device every
//! [`PER_DEVICE_WINDOW`] (whoever asks: a second click adds nothing but load) and
//! [`PER_USER`] times a minute per user (a script looping over the fleet is a second
//! prober, not an operator).

use std::time::Duration;

use tokio::time::Instant;

use crate::rate::Counter;

pub const PER_DEVICE_WINDOW: Duration = Duration::from_secs(5);
pub const PER_USER: u32 = 10;
pub const PER_USER_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct ProbeLimits {
    devices: Counter<String>,
    users: Counter<String>,
}

impl Default for ProbeLimits {
    fn default() -> Self {
        ProbeLimits {
            devices: Counter::new(1, PER_DEVICE_WINDOW),
            users: Counter::new(PER_USER, PER_USER_WINDOW),
        }
    }
}

/// Why a probe now was refused, and how long until it may be asked again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    Device(Duration),
    User(Duration),
}

impl Limited {
    pub fn retry_after(self) -> Duration {
        match self {
            Limited::Device(d) | Limited::User(d) => d,
        }
    }
}

impl std::fmt::Display for Limited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.retry_after().as_secs_f64().ceil();
        match self {
            Limited::Device(_) => write!(
                f,
                "this device was probed on request less than {} s ago; again in {secs} s",
                PER_DEVICE_WINDOW.as_secs()
            ),
            Limited::User(_) => write!(
                f,
                "at most {PER_USER} probes now a minute per user; again in {secs} s"
            ),
        }
    }
}

impl ProbeLimits {
    /// Counts a probe of `device` by `user`, or says why not. A refusal by the device's
    /// limit costs the user nothing.
    pub fn take(&self, user: &str, device: &str) -> Result<(), Limited> {
        let now = Instant::now();
        if let Some(wait) = self.devices.blocked(device, now) {
            return Err(Limited::Device(wait));
        }
        self.users
            .take(user.to_string(), now)
            .map_err(Limited::User)?;
        self.devices
            .take(device.to_string(), now)
            .map_err(Limited::Device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_device_once_per_window_and_a_user_ten_a_minute() {
        let l = ProbeLimits::default();
        assert_eq!(l.take("oscar", "atm-1"), Ok(()));
        assert_eq!(
            l.take("nino", "atm-1"),
            Err(Limited::Device(PER_DEVICE_WINDOW)),
            "whoever asks"
        );
        tokio::time::advance(PER_DEVICE_WINDOW).await;
        assert_eq!(l.take("nino", "atm-1"), Ok(()));
        for i in 2..=PER_USER {
            assert_eq!(l.take("oscar", &format!("atm-{i}")), Ok(()));
        }
        let refused = l.take("oscar", "atm-99").unwrap_err();
        assert!(matches!(refused, Limited::User(_)), "{refused}");
        assert_eq!(
            refused.retry_after(),
            PER_USER_WINDOW - PER_DEVICE_WINDOW,
            "from the first of the minute"
        );
        assert_eq!(l.take("nino", "atm-99"), Ok(()), "not the device's fault");
    }
}
