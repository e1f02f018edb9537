//! Where in its interval each device is probed: a stable phase derived from its name,
//! so probes are spread evenly and never burst, and a restart or reload probes each
//! device at the same point of its cycle.

use std::time::Duration;

use tokio::time::Instant;

/// FNV-1a: stable across runs and platforms (std's hasher makes no such promise).
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The device's offset inside its interval.
pub fn phase(name: &str, interval: Duration) -> Duration {
    let nanos = interval.as_nanos().max(1) as u64;
    // Mix the hash once more: FNV's low bits vary little for names differing only at the end.
    let mixed = stable_hash(name)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(29);
    Duration::from_nanos(mixed % nanos)
}

/// The device's schedule: slots at `epoch + phase + k * interval`.
#[derive(Debug, Clone, Copy)]
pub struct Slots {
    first: Instant,
    interval: Duration,
}

impl Slots {
    pub fn new(epoch: Instant, name: &str, interval: Duration) -> Self {
        Self {
            first: epoch + phase(name, interval),
            interval,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The first slot at or after `t`.
    pub fn at_or_after(&self, t: Instant) -> Instant {
        if t <= self.first {
            return self.first;
        }
        let since = (t - self.first).as_nanos();
        let step = self.interval.as_nanos().max(1);
        let k = since.div_ceil(step);
        self.first + Duration::from_nanos((k * step) as u64)
    }

    /// The first slot strictly after `t`.
    pub fn after(&self, t: Instant) -> Instant {
        self.at_or_after(t + Duration::from_nanos(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_is_stable_and_inside_the_interval() {
        let i = Duration::from_secs(10);
        assert_eq!(phase("vake-atm-1", i), phase("vake-atm-1", i));
        for n in 0..1000 {
            assert!(phase(&format!("dev-{n}"), i) < i);
        }
    }

    #[test]
    fn phases_spread_evenly() {
        // 10,000 devices over 10 one-second buckets: each within 10% of 1,000.
        let i = Duration::from_secs(10);
        let mut buckets = [0u32; 10];
        for n in 0..10_000 {
            buckets[phase(&format!("branch-{}-atm-{n}", n % 37), i).as_secs() as usize] += 1;
        }
        for b in buckets {
            assert!((900..=1100).contains(&b), "{buckets:?}");
        }
    }

    #[test]
    fn slots_step_by_interval() {
        let epoch = Instant::now();
        let s = Slots {
            first: epoch + Duration::from_millis(300),
            interval: Duration::from_secs(1),
        };
        assert_eq!(s.at_or_after(epoch), epoch + Duration::from_millis(300));
        assert_eq!(
            s.at_or_after(epoch + Duration::from_millis(300)),
            epoch + Duration::from_millis(300)
        );
        assert_eq!(
            s.after(epoch + Duration::from_millis(300)),
            epoch + Duration::from_millis(1300)
        );
        assert_eq!(
            s.at_or_after(epoch + Duration::from_millis(2500)),
            epoch + Duration::from_millis(3300)
        );
    }
}
