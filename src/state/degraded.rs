//! The `degraded` condition: RTT or loss above the device's thresholds over its window.
//! Pure logic, no I/O, no clock of its own; fed each probe after the status machine.
//!
//! Not a status: up/down are the machine's, and only an `up` device is evaluated (a
//! device that is down or unreachable is not degraded; its samples are dropped, so it
//! starts a fresh window when it is up again).
//!
//! - **Figures** over the last `window`: loss is the share of the window's echo
//!   requests left unanswered; RTT is the mean over the window's replies.
//! - **A verdict** only once the device has been up and probed for a whole window, so
//!   that one probe's lost packet (50 % of two) decides nothing.
//! - **Degraded** as soon as the figures are above a threshold.
//! - **Hysteresis**: cleared only once every evaluation for a whole window has been at
//!   or below the thresholds: a loss hovering around its threshold stays one condition,
//!   not a flap per probe. After the cause ends, clearing takes up to two windows (one
//!   for the bad samples to leave the window, one to stay clear).
//!
//! The tracker also remembers what the store was last told about the device's
//! `degraded` alert ([`Alerted`]), which [`super::State`] decides with the suppression
//! rules (maintenance, parents).

mod publish;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Device;
use crate::config::degraded::DegradedSettings;
use crate::probe::ProbeOutcome;

/// More samples than this in a window (a retry interval far shorter than the window)
/// drop the oldest: the window is then shorter than configured, never unbounded.
pub const MAX_SAMPLES: usize = 1024;

/// The figures of one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    /// Mean RTT of the window's replies, in microseconds; None when none came.
    pub rtt_us: Option<u32>,
    /// Echo requests sent and replies received over the window.
    pub sent: u32,
    pub received: u32,
}

impl Figures {
    /// Loss over the window, 0.0..=1.0.
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        1.0 - f64::from(self.received.min(self.sent)) / f64::from(self.sent)
    }

    pub fn rtt(&self) -> Option<Duration> {
        self.rtt_us.map(|us| Duration::from_micros(u64::from(us)))
    }

    /// Which thresholds these figures are above.
    pub fn above(&self, s: &DegradedSettings) -> Above {
        Above {
            rtt: s
                .rtt_above
                .is_some_and(|t| self.rtt().is_some_and(|r| r > t)),
            loss: s.loss_above.is_some_and(|t| self.loss() > t.fraction()),
        }
    }
}

/// Which thresholds a window's figures are above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Above {
    pub rtt: bool,
    pub loss: bool,
}

impl Above {
    pub fn any(self) -> bool {
        self.rtt || self.loss
    }
}

/// The condition while it holds: since when, and the figures that raised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Degraded {
    /// When the probe that found the figures above a threshold started.
    pub since: DateTime<Utc>,
    pub figures: Figures,
    pub above: Above,
}

impl Degraded {
    /// The `degraded` alert's message: the figures and the thresholds they are above.
    pub fn message(&self, device: &Device, s: &DegradedSettings) -> String {
        let window = crate::config::duration::format(s.window);
        let mut why = Vec::new();
        if let (true, Some(rtt), Some(limit)) = (self.above.rtt, self.figures.rtt(), s.rtt_above) {
            why.push(format!(
                "mean rtt {:.1} ms above {}",
                rtt.as_secs_f64() * 1000.0,
                crate::config::duration::format(limit)
            ));
        }
        if let (true, Some(limit)) = (self.above.loss, s.loss_above) {
            why.push(format!(
                "loss {:.1}% above {limit}",
                self.figures.loss() * 100.0
            ));
        }
        format!(
            "device {} ({}) is degraded: {} over {window}",
            device.name,
            device.address,
            why.join(", ")
        )
    }
}

/// A raised or cleared condition, as broadcast to live readers.
#[derive(Debug, Clone)]
pub struct DegradedChange {
    pub version: u64,
    pub device: Arc<Device>,
    pub at: DateTime<Utc>,
    /// Set when raised; None when cleared.
    pub degraded: Option<Degraded>,
    /// Set when cleared.
    pub cleared: Option<ClearedWhy>,
}

/// What the store is told about a device's `degraded` alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertChange {
    Open { message: String },
    Resolve { why: ClearedWhy },
}

/// A change of the condition, as [`Tracker::observe`] decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The figures went above a threshold.
    Raised(Degraded),
    /// The condition ended: the figures stayed at or below the thresholds for a whole
    /// window, or the device is no longer evaluated.
    Cleared { at: DateTime<Utc>, why: ClearedWhy },
    /// The first verdict of a fresh tracker, clear: what the store may still hold from
    /// before (a restart, a new address) can be resolved.
    FirstClear { at: DateTime<Utc> },
}

/// Why a condition ended; also the resolution of its alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearedWhy {
    /// The figures are back at or below the thresholds.
    Recovered,
    /// The device is down or unreachable: its status says more than its latency.
    NotUp,
    /// The thresholds were switched off by a reload.
    Disabled,
}

impl ClearedWhy {
    pub fn as_str(self) -> &'static str {
        match self {
            ClearedWhy::Recovered => "recovered",
            ClearedWhy::NotUp => "down",
            ClearedWhy::Disabled => "disabled",
        }
    }
}

/// What the store was last told about the device's `degraded` alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alerted {
    /// Nothing yet by this tracker: an alert of an earlier process may be open.
    #[default]
    Unknown,
    Open,
    Resolved,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: DateTime<Utc>,
    sent: u16,
    received: u16,
    rtt_us: Option<u32>,
}

/// Per-device window and condition. Allocates nothing until the device is evaluated.
#[derive(Debug, Default)]
pub struct Tracker {
    samples: VecDeque<Sample>,
    /// Start of the first probe since the device was last not evaluated: a verdict
    /// needs a whole window after it.
    from: Option<DateTime<Utc>>,
    /// Whether a verdict was ever given by this tracker.
    judged: bool,
    current: Option<Degraded>,
    /// While degraded: since when every evaluation has been clear.
    clear_since: Option<DateTime<Utc>>,
    pub alerted: Alerted,
}

impl Tracker {
    /// The condition as it stands.
    pub fn current(&self) -> Option<Degraded> {
        self.current
    }

    /// The figures of the window as it stands (None before the first sample).
    pub fn figures(&self) -> Option<Figures> {
        (!self.samples.is_empty()).then(|| figures(&self.samples))
    }

    /// Feeds one probe of the device (`started` is when it began), after its status
    /// machine has seen it: `up` is whether the device is `up` now.
    pub fn observe(
        &mut self,
        settings: &DegradedSettings,
        outcome: &ProbeOutcome,
        started: DateTime<Utc>,
        up: bool,
    ) -> Option<Verdict> {
        if !settings.is_enabled() || !up {
            let why = if up {
                ClearedWhy::Disabled
            } else {
                ClearedWhy::NotUp
            };
            self.reset();
            let was = self.current.take();
            return was.map(|_| Verdict::Cleared { at: started, why });
        }
        let window = chrono::Duration::from_std(settings.window).unwrap_or(chrono::Duration::MAX);
        if self
            .samples
            .back()
            .is_some_and(|last| started - last.at >= window)
        {
            // Not probed for a whole window (a stalled scheduler, a suspended host): what
            // is left would be one probe's figures. Start the window over.
            self.reset();
        }
        let from = *self.from.get_or_insert(started);
        self.samples.push_back(Sample {
            at: started,
            sent: outcome.sent.min(u32::from(u16::MAX)) as u16,
            received: outcome.received.min(u32::from(u16::MAX)) as u16,
            rtt_us: outcome
                .rtt
                .map(|d| d.as_micros().min(u128::from(u32::MAX)) as u32),
        });
        while self
            .samples
            .front()
            .is_some_and(|s| started - s.at >= window)
            || self.samples.len() > MAX_SAMPLES
        {
            self.samples.pop_front();
        }
        if started - from < window {
            return None; // not a whole window of this device up yet
        }
        let figures = figures(&self.samples);
        let above = figures.above(settings);
        let first = !self.judged;
        self.judged = true;
        match self.current {
            None if above.any() => {
                let d = Degraded {
                    since: started,
                    figures,
                    above,
                };
                self.current = Some(d);
                self.clear_since = None;
                Some(Verdict::Raised(d))
            }
            None => first.then_some(Verdict::FirstClear { at: started }),
            Some(_) if above.any() => {
                self.clear_since = None;
                None
            }
            Some(_) => {
                let since = *self.clear_since.get_or_insert(started);
                if started - since < window {
                    return None;
                }
                self.current = None;
                self.clear_since = None;
                Some(Verdict::Cleared {
                    at: started,
                    why: ClearedWhy::Recovered,
                })
            }
        }
    }

    /// Forgets the window (the device is not evaluated now); the condition and what the
    /// store was told stay for the caller to settle.
    fn reset(&mut self) {
        if self.samples.capacity() > 0 {
            self.samples = VecDeque::new();
        }
        self.from = None;
        self.clear_since = None;
    }
}

fn figures(samples: &VecDeque<Sample>) -> Figures {
    let (mut sent, mut received, mut rtt_sum, mut rtt_n) = (0u32, 0u32, 0u64, 0u64);
    for s in samples {
        sent = sent.saturating_add(u32::from(s.sent));
        received = received.saturating_add(u32::from(s.received));
        if let Some(rtt) = s.rtt_us {
            // Weighted by replies: the mean over the window's replies, not its probes.
            let n = u64::from(s.received.max(1));
            rtt_sum = rtt_sum.saturating_add(u64::from(rtt) * n);
            rtt_n += n;
        }
    }
    Figures {
        rtt_us: (rtt_n > 0).then(|| (rtt_sum / rtt_n).min(u64::from(u32::MAX)) as u32),
        sent,
        received,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::config::degraded::Loss;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    fn settings(rtt_ms: Option<u64>, loss: Option<&str>, window_s: u64) -> DegradedSettings {
        DegradedSettings {
            rtt_above: rtt_ms.map(Duration::from_millis),
            loss_above: loss.map(|l| Loss::parse(l).unwrap().unwrap()),
            window: Duration::from_secs(window_s),
        }
    }

    fn probe(sent: u32, received: u32, rtt_ms: u64) -> ProbeOutcome {
        ProbeOutcome {
            sent,
            received,
            rtt: (received > 0).then(|| Duration::from_millis(rtt_ms)),
        }
    }

    #[test]
    fn a_verdict_waits_for_a_whole_window_and_rtt_above_raises_it() {
        let s = settings(Some(200), None, 30);
        let mut tr = Tracker::default();
        // Slow from the first probe, but no verdict before 30 s of it.
        for i in 0..3 {
            assert_eq!(tr.observe(&s, &probe(2, 2, 250), t(i * 10), true), None);
        }
        let Some(Verdict::Raised(d)) = tr.observe(&s, &probe(2, 2, 250), t(30), true) else {
            panic!("{:?}", tr.current())
        };
        assert_eq!(d.since, t(30));
        assert_eq!(d.figures.rtt_us, Some(250_000));
        assert_eq!(
            d.above,
            Above {
                rtt: true,
                loss: false
            }
        );
        // Stays raised without a second verdict.
        assert_eq!(tr.observe(&s, &probe(2, 2, 250), t(40), true), None);
    }

    #[test]
    fn a_fresh_tracker_says_once_that_it_is_clear() {
        let s = settings(Some(200), Some("10%"), 20);
        let mut tr = Tracker::default();
        assert_eq!(tr.observe(&s, &probe(2, 2, 5), t(0), true), None);
        assert_eq!(tr.observe(&s, &probe(2, 2, 5), t(10), true), None);
        assert_eq!(
            tr.observe(&s, &probe(2, 2, 5), t(20), true),
            Some(Verdict::FirstClear { at: t(20) })
        );
        assert_eq!(tr.observe(&s, &probe(2, 2, 5), t(30), true), None);
    }

    #[test]
    fn loss_is_over_the_windows_requests_at_the_threshold_is_not_above() {
        let s = settings(None, Some("10%"), 100);
        let mut tr = Tracker::default();
        // 1 lost of 10 per probe: exactly 10 %, not above.
        for i in 0..=10 {
            let v = tr.observe(&s, &probe(10, 9, 1), t(i * 10), true);
            assert!(!matches!(v, Some(Verdict::Raised(_))), "{i}: {v:?}");
        }
        // One probe losing 3 of 10 lifts the window (its last 10 probes) above: 12 of 100.
        let v = tr.observe(&s, &probe(10, 7, 1), t(110), true);
        let Some(Verdict::Raised(d)) = v else {
            panic!("{v:?}")
        };
        assert_eq!((d.figures.sent, d.figures.received), (100, 88));
        assert!(d.above.loss && !d.above.rtt);
    }

    #[test]
    fn old_samples_leave_the_window() {
        let s = settings(Some(100), None, 30);
        let mut tr = Tracker::default();
        // One very slow probe, then fast ones: above while it is in the window only.
        assert_eq!(tr.observe(&s, &probe(1, 1, 1000), t(0), true), None);
        for i in 1..3 {
            assert_eq!(tr.observe(&s, &probe(1, 1, 1), t(i * 10), true), None);
        }
        // At t(30) the slow sample is exactly a window old: out. Clear.
        assert_eq!(
            tr.observe(&s, &probe(1, 1, 1), t(30), true),
            Some(Verdict::FirstClear { at: t(30) })
        );
        assert_eq!(tr.figures().unwrap().rtt_us, Some(1000));
    }

    #[test]
    fn hysteresis_clears_only_after_a_whole_window_of_clear_evaluations() {
        let s = settings(None, Some("10%"), 30);
        let mut tr = Tracker::default();
        for i in 0..3 {
            tr.observe(&s, &probe(2, 1, 1), t(i * 10), true);
        }
        assert!(matches!(
            tr.observe(&s, &probe(2, 1, 1), t(30), true),
            Some(Verdict::Raised(_))
        ));
        // The loss stops: the last bad sample (t(30)) is a window old at t(60).
        let mut cleared = None;
        for i in 4..20 {
            if let Some(v) = tr.observe(&s, &probe(2, 2, 1), t(i * 10), true) {
                cleared = Some((i, v));
                break;
            }
        }
        // First clear evaluation at t(60) (window t(40)..t(60) all answered): cleared a
        // window later, at t(90), not at once.
        assert_eq!(
            cleared,
            Some((
                9,
                Verdict::Cleared {
                    at: t(90),
                    why: ClearedWhy::Recovered
                }
            ))
        );
    }

    #[test]
    fn loss_hovering_at_the_threshold_is_one_condition_not_a_flap_per_probe() {
        let s = settings(None, Some("10%"), 40);
        let mut tr = Tracker::default();
        let mut verdicts = Vec::new();
        // Alternating: probes of 10 with 0 or 2 lost: the window wobbles around 10 %.
        for i in 0..200 {
            let received = if i % 2 == 0 { 10 } else { 8 };
            let lost_more = i % 7 == 0; // now and then above
            let r = if lost_more { 7 } else { received };
            if let Some(v) = tr.observe(&s, &probe(10, r, 1), t(i * 10), true) {
                verdicts.push(v);
            }
        }
        let raised = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Raised(_)))
            .count();
        assert_eq!(raised, 1, "{verdicts:?}");
        assert!(tr.current().is_some());
    }

    #[test]
    fn a_device_that_goes_down_is_cleared_and_starts_a_fresh_window_when_up() {
        let s = settings(Some(200), None, 20);
        let mut tr = Tracker::default();
        for i in 0..=2 {
            tr.observe(&s, &probe(2, 2, 300), t(i * 10), true);
        }
        assert!(tr.current().is_some());
        assert_eq!(
            tr.observe(&s, &probe(2, 0, 0), t(30), false),
            Some(Verdict::Cleared {
                at: t(30),
                why: ClearedWhy::NotUp
            })
        );
        assert_eq!(tr.figures(), None, "the window is dropped");
        assert_eq!(tr.observe(&s, &probe(2, 0, 0), t(31), false), None);
        // Up again and still slow: a whole new window before it is raised again.
        assert_eq!(tr.observe(&s, &probe(2, 2, 300), t(40), true), None);
        assert_eq!(tr.observe(&s, &probe(2, 2, 300), t(50), true), None);
        assert!(matches!(
            tr.observe(&s, &probe(2, 2, 300), t(60), true),
            Some(Verdict::Raised(d)) if d.since == t(60)
        ));
    }

    #[test]
    fn switching_the_thresholds_off_clears_the_condition() {
        let on = settings(Some(200), None, 20);
        let mut tr = Tracker::default();
        for i in 0..=2 {
            tr.observe(&on, &probe(2, 2, 300), t(i * 10), true);
        }
        assert!(tr.current().is_some());
        let off = settings(None, None, 20);
        assert_eq!(
            tr.observe(&off, &probe(2, 2, 300), t(30), true),
            Some(Verdict::Cleared {
                at: t(30),
                why: ClearedWhy::Disabled
            })
        );
        assert_eq!(tr.observe(&off, &probe(2, 2, 300), t(40), true), None);
    }

    #[test]
    fn a_gap_of_a_whole_window_starts_the_window_over() {
        let s = settings(None, Some("10%"), 30);
        let mut tr = Tracker::default();
        for i in 0..=3 {
            tr.observe(&s, &probe(2, 2, 1), t(i * 10), true);
        }
        // Nothing for a minute, then one lossy probe: not a verdict on one probe.
        assert_eq!(tr.observe(&s, &probe(2, 1, 1), t(100), true), None);
        assert_eq!(tr.observe(&s, &probe(2, 1, 1), t(110), true), None);
        assert_eq!(tr.observe(&s, &probe(2, 1, 1), t(120), true), None);
        assert!(matches!(
            tr.observe(&s, &probe(2, 1, 1), t(130), true),
            Some(Verdict::Raised(_))
        ));
    }

    #[test]
    fn a_burst_of_retries_is_bounded() {
        let s = settings(Some(200), None, 3600);
        let mut tr = Tracker::default();
        for i in 0..(MAX_SAMPLES as i64 * 2) {
            tr.observe(&s, &probe(1, 1, 1), t(i), true);
        }
        assert_eq!(tr.samples.len(), MAX_SAMPLES);
    }

    #[test]
    fn rtt_is_the_mean_over_replies() {
        let mut tr = Tracker::default();
        let s = settings(Some(1), None, 100);
        tr.observe(&s, &probe(4, 3, 10), t(0), true);
        tr.observe(&s, &probe(4, 1, 50), t(1), true);
        tr.observe(&s, &probe(4, 0, 0), t(2), true);
        let f = tr.figures().unwrap();
        assert_eq!(f.rtt_us, Some(20_000), "(3×10 + 1×50) / 4");
        assert_eq!((f.sent, f.received), (12, 4));
    }
}
