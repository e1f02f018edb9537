//! Grouping for one receiver: notices wait in their group for `group_wait` (a new group)
//! or until `group_interval` has passed since its last message (a group that has sent;
//! never less than `group_wait` from the change),
//! then go as one message, in outbox order; a group whose alerts still fire and that has
//! nothing new sends them again every `repeat_interval`. A group is forgotten once none
//! of its alerts fires and nothing waits: the next outage is a new group (and waits
//! `group_wait` again). An acknowledged alert is not repeated while it stays
//! acknowledged (someone is on it); its resolution still goes out as any change does.
//!
//! Pure bookkeeping over instants the caller gives (`tokio::time::Instant`, so that the
//! tests run it on paused time); nothing here waits or writes.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::route::Policy;
use super::{Notice, NoticeState};

type Key = (usize, BTreeMap<String, String>);

#[derive(Debug)]
struct Group {
    pending: Vec<Notice>,
    /// The alerts of the group still firing as far as its messages told, by alert id.
    firing: BTreeMap<i64, Notice>,
    flush_at: Option<Instant>,
    last_sent: Option<Instant>,
}

/// A message the groups decided to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Flush {
    pub group: BTreeMap<String, String>,
    pub notices: Vec<Notice>,
    /// The earliest alert change it tells of (a repeat: now).
    pub since: DateTime<Utc>,
    /// Sent again because its alerts still fire, with nothing new.
    pub repeat: bool,
}

/// The groups of one receiver, by policy and group.
#[derive(Debug, Default)]
pub struct Groups {
    groups: HashMap<Key, Group>,
    /// The open alerts someone acknowledged, by id: left out of repeats. Forgotten when
    /// they resolve.
    acknowledged: HashSet<i64>,
}

impl Groups {
    /// Adds a notice to its group, which then flushes when its timers say.
    pub fn push(&mut self, policy_id: usize, policy: &Policy, notice: Notice, now: Instant) {
        let key = (policy_id, policy.group_of(&notice));
        let g = self.groups.entry(key).or_insert_with(|| Group {
            pending: Vec::new(),
            firing: BTreeMap::new(),
            flush_at: None,
            last_sent: None,
        });
        if g.flush_at.is_none() {
            // A group that has sent waits for group_interval since then, and in any case
            // for group_wait from now: after a long quiet the first change (one device of
            // a branch back) waits for the rest as a new group's first alert does.
            g.flush_at = Some(match g.last_sent {
                None => now + policy.group_wait,
                Some(sent) => (sent + policy.group_interval).max(now + policy.group_wait),
            });
        }
        g.pending.push(notice);
    }

    /// A firing alert that was told of before a restart: it is repeated as if its group
    /// had sent `group_interval` ago (so a change to it goes out at once, a repeat after
    /// `repeat_interval`).
    pub fn restore(&mut self, policy_id: usize, policy: &Policy, notice: Notice, now: Instant) {
        let key = (policy_id, policy.group_of(&notice));
        let sent = now.checked_sub(policy.group_interval).unwrap_or(now);
        let g = self.groups.entry(key).or_insert_with(|| Group {
            pending: Vec::new(),
            firing: BTreeMap::new(),
            flush_at: None,
            last_sent: Some(sent),
        });
        g.firing.insert(notice.alert_id, notice);
    }

    /// Marks alert `alert_id` acknowledged or not: an acknowledged alert is left out of
    /// its group's repeats (and a group whose firing alerts are all acknowledged repeats
    /// nothing) until it is un-acknowledged or resolves.
    pub fn acknowledge(&mut self, alert_id: i64, acknowledged: bool) {
        if acknowledged {
            self.acknowledged.insert(alert_id);
        } else {
            self.acknowledged.remove(&alert_id);
        }
    }

    /// Forgets every acknowledgement (before reading them all again).
    pub fn forget_acknowledgements(&mut self) {
        self.acknowledged.clear();
    }

    /// The messages due at `now`, in a stable order (policy, group); the groups are left
    /// as if they were sent.
    pub fn flush_due(&mut self, now: Instant, policies: impl Fn(usize) -> Policy) -> Vec<Flush> {
        let mut out: Vec<(Key, Flush)> = Vec::new();
        for (key, g) in self.groups.iter_mut() {
            let policy = policies(key.0);
            if g.flush_at.is_some_and(|t| t <= now) {
                g.flush_at = None;
                let pending = std::mem::take(&mut g.pending);
                for n in &pending {
                    match n.state {
                        NoticeState::Firing => {
                            g.firing.insert(n.alert_id, n.clone());
                        }
                        NoticeState::Resolved => {
                            g.firing.remove(&n.alert_id);
                            self.acknowledged.remove(&n.alert_id);
                        }
                    }
                }
                let notices: Vec<Notice> = pending
                    .into_iter()
                    .filter(|n| policy.send_resolved || n.state == NoticeState::Firing)
                    .collect();
                if let Some(since) = notices.iter().map(changed_at).min() {
                    g.last_sent = Some(now);
                    out.push((
                        key.clone(),
                        Flush {
                            group: key.1.clone(),
                            notices,
                            since,
                            repeat: false,
                        },
                    ));
                }
                continue;
            }
            let acknowledged = &self.acknowledged;
            let unattended = |n: &&Notice| !acknowledged.contains(&n.alert_id);
            let repeat_due = g.flush_at.is_none()
                && g.firing.values().any(|n| unattended(&n))
                && policy
                    .repeat_interval
                    .zip(g.last_sent)
                    .is_some_and(|(every, sent)| sent + every <= now);
            if repeat_due {
                g.last_sent = Some(now);
                out.push((
                    key.clone(),
                    Flush {
                        group: key.1.clone(),
                        notices: g.firing.values().filter(unattended).cloned().collect(),
                        since: Utc::now(),
                        repeat: true,
                    },
                ));
            }
        }
        self.groups
            .retain(|_, g| !g.firing.is_empty() || !g.pending.is_empty());
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.into_iter()
            .map(|(_, mut f)| {
                f.notices.sort_by_key(|n| n.outbox_id);
                f
            })
            .collect()
    }

    /// When the next message is due (a flush or a repeat), if any is.
    pub fn next_due(&self, policies: impl Fn(usize) -> Policy) -> Option<Instant> {
        self.groups
            .iter()
            .filter_map(|(key, g)| {
                // A group whose firing alerts are all acknowledged has no repeat due (or
                // the dispatcher would wake for it at once, again and again).
                let unattended = g.firing.keys().any(|id| !self.acknowledged.contains(id));
                let repeat = unattended
                    .then(|| policies(key.0).repeat_interval.zip(g.last_sent))
                    .flatten()
                    .map(|(every, sent)| sent + every);
                g.flush_at.or(repeat)
            })
            .min()
    }

    /// The lowest outbox id still waiting in a group: the receiver's cursor stays below.
    pub fn lowest_waiting(&self) -> Option<i64> {
        self.groups
            .values()
            .flat_map(|g| g.pending.iter().map(|n| n.outbox_id))
            .min()
    }

    /// Notices waiting in groups.
    pub fn waiting(&self) -> usize {
        self.groups.values().map(|g| g.pending.len()).sum()
    }
}

/// When the notice's alert changed.
pub fn changed_at(n: &Notice) -> DateTime<Utc> {
    match n.state {
        NoticeState::Firing => n.opened_at,
        NoticeState::Resolved => n.resolved_at.unwrap_or(n.opened_at),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::settings::notify::GroupBy;
    use crate::notify::test_notice;

    fn policy() -> Policy {
        Policy {
            group_by: vec![GroupBy::Region, GroupBy::Branch],
            group_wait: Duration::from_secs(5),
            group_interval: Duration::from_secs(60),
            repeat_interval: Some(Duration::from_secs(3600)),
            send_resolved: true,
        }
    }

    fn notice(id: i64, device: &str, branch: &str, state: NoticeState) -> Notice {
        let mut n = test_notice(id, device);
        n.branch = branch.into();
        n.alert_id = device.len() as i64 * 1000 + device.bytes().map(i64::from).sum::<i64>();
        n.state = state;
        if state == NoticeState::Resolved {
            n.resolved_at = Some(n.opened_at + chrono::Duration::seconds(30));
        }
        n
    }

    fn devices(f: &[Flush]) -> Vec<Vec<String>> {
        f.iter()
            .map(|f| f.notices.iter().map(|n| n.device.clone()).collect())
            .collect()
    }

    async fn sleep(secs: u64) -> Instant {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        Instant::now()
    }

    #[tokio::test(start_paused = true)]
    async fn a_branch_going_dark_within_group_wait_is_one_message() {
        let p = policy();
        let mut g = Groups::default();
        let t0 = Instant::now();
        g.push(1, &p, notice(1, "a", "e-01", NoticeState::Firing), t0);
        let now = sleep(2).await;
        g.push(1, &p, notice(2, "b", "e-01", NoticeState::Firing), now);
        g.push(1, &p, notice(3, "x", "e-02", NoticeState::Firing), now);
        assert_eq!(g.lowest_waiting(), Some(1));
        assert!(g.flush_due(now, |_| p.clone()).is_empty());
        assert_eq!(g.next_due(|_| p.clone()), Some(t0 + Duration::from_secs(5)));
        let now = sleep(3).await;
        let sent = g.flush_due(now, |_| p.clone());
        assert_eq!(
            devices(&sent),
            [vec!["a", "b"]],
            "e-02's group waits its own 5 s"
        );
        assert_eq!(sent[0].group["branch"], "e-01");
        let now = sleep(2).await;
        assert_eq!(devices(&g.flush_due(now, |_| p.clone())), [vec!["x"]]);
        assert_eq!(g.lowest_waiting(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn changes_after_a_message_wait_for_group_interval_then_the_group_ends() {
        let p = policy();
        let mut g = Groups::default();
        g.push(
            1,
            &p,
            notice(1, "a", "e-01", NoticeState::Firing),
            Instant::now(),
        );
        let now = sleep(5).await;
        assert_eq!(g.flush_due(now, |_| p.clone()).len(), 1);
        let now = sleep(10).await;
        g.push(1, &p, notice(2, "a", "e-01", NoticeState::Resolved), now);
        let now = sleep(49).await;
        assert!(g.flush_due(now, |_| p.clone()).is_empty(), "54 s after");
        let now = sleep(1).await;
        let sent = g.flush_due(now, |_| p.clone());
        assert_eq!(sent[0].notices[0].state, NoticeState::Resolved);
        assert_eq!(g.next_due(|_| p.clone()), None, "nothing fires: forgotten");
        // The next outage is a new group: group_wait again, not group_interval.
        let now = sleep(1).await;
        g.push(1, &p, notice(3, "a", "e-01", NoticeState::Firing), now);
        assert_eq!(
            g.next_due(|_| p.clone()),
            Some(now + Duration::from_secs(5))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn firing_alerts_repeat_every_repeat_interval_and_resolved_ones_may_be_kept_quiet() {
        let mut p = policy();
        p.send_resolved = false;
        let mut g = Groups::default();
        g.push(
            1,
            &p,
            notice(1, "a", "e-01", NoticeState::Firing),
            Instant::now(),
        );
        g.push(
            1,
            &p,
            notice(2, "b", "e-01", NoticeState::Firing),
            Instant::now(),
        );
        let now = sleep(5).await;
        assert_eq!(g.flush_due(now, |_| p.clone()).len(), 1);
        let now = sleep(3599).await;
        assert!(g.flush_due(now, |_| p.clone()).is_empty());
        let now = sleep(1).await;
        let again = g.flush_due(now, |_| p.clone());
        assert_eq!(devices(&again), [vec!["a", "b"]]);
        assert!(again[0].repeat);
        g.push(1, &p, notice(3, "a", "e-01", NoticeState::Resolved), now);
        let now = sleep(60).await;
        assert!(
            g.flush_due(now, |_| p.clone()).is_empty(),
            "resolved, not sent"
        );
        let now = sleep(3600).await;
        assert_eq!(devices(&g.flush_due(now, |_| p.clone())), [vec!["b"]]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_acknowledged_alert_is_not_repeated_but_its_resolution_goes_out() {
        let p = policy();
        let mut g = Groups::default();
        let a = notice(1, "a", "e-01", NoticeState::Firing);
        let b = notice(2, "b", "e-01", NoticeState::Firing);
        let (a_id, b_id) = (a.alert_id, b.alert_id);
        g.push(1, &p, a, Instant::now());
        g.push(1, &p, b, Instant::now());
        // Acknowledged while its opening still waits in the group: the opening goes out.
        g.acknowledge(a_id, true);
        let now = sleep(5).await;
        assert_eq!(devices(&g.flush_due(now, |_| p.clone())), [vec!["a", "b"]]);
        // The hourly repeat leaves the acknowledged alert out.
        let now = sleep(3600).await;
        let again = g.flush_due(now, |_| p.clone());
        assert_eq!(devices(&again), [vec!["b"]]);
        assert!(again[0].repeat);
        // Both acknowledged: nothing repeats, and nothing is due (no busy wake-ups).
        g.acknowledge(b_id, true);
        assert_eq!(g.next_due(|_| p.clone()), None);
        let now = sleep(3600 * 5).await;
        assert!(g.flush_due(now, |_| p.clone()).is_empty());
        // Un-acknowledged: its repeats resume.
        g.acknowledge(b_id, false);
        assert!(g.next_due(|_| p.clone()).is_some_and(|t| t <= now));
        assert_eq!(devices(&g.flush_due(now, |_| p.clone())), [vec!["b"]]);
        // The acknowledged alert's resolution goes out as any change does.
        g.push(1, &p, notice(3, "a", "e-01", NoticeState::Resolved), now);
        let now = sleep(60).await;
        let sent = g.flush_due(now, |_| p.clone());
        assert_eq!(devices(&sent), [vec!["a"]]);
        assert_eq!(sent[0].notices[0].state, NoticeState::Resolved);
        assert!(!g.acknowledged.contains(&a_id), "forgotten once resolved");
    }

    #[tokio::test(start_paused = true)]
    async fn restored_alerts_repeat_and_a_change_goes_out_after_group_wait() {
        let p = policy();
        let mut g = Groups::default();
        let now = sleep(100).await;
        g.restore(1, &p, notice(1, "a", "e-01", NoticeState::Firing), now);
        assert!(g.flush_due(now, |_| p.clone()).is_empty());
        assert_eq!(
            g.next_due(|_| p.clone()),
            Some(now - Duration::from_secs(60) + Duration::from_secs(3600)),
            "repeats as if sent a group_interval ago"
        );
        g.push(1, &p, notice(2, "a", "e-01", NoticeState::Resolved), now);
        let now = sleep(5).await;
        assert_eq!(devices(&g.flush_due(now, |_| p.clone())), [vec!["a"]]);
        assert_eq!(g.next_due(|_| p.clone()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_long_quiet_the_first_change_waits_group_wait_for_the_rest() {
        let p = policy();
        let mut g = Groups::default();
        g.push(
            1,
            &p,
            notice(1, "a", "e-01", NoticeState::Firing),
            Instant::now(),
        );
        g.push(
            1,
            &p,
            notice(2, "b", "e-01", NoticeState::Firing),
            Instant::now(),
        );
        let now = sleep(5).await;
        assert_eq!(g.flush_due(now, |_| p.clone()).len(), 1);
        // An hour later both come back, a second apart: one message, not two.
        let now = sleep(3600).await;
        g.push(1, &p, notice(3, "a", "e-01", NoticeState::Resolved), now);
        let now = sleep(1).await;
        g.push(1, &p, notice(4, "b", "e-01", NoticeState::Resolved), now);
        assert!(g.flush_due(now, |_| p.clone()).is_empty());
        let now = sleep(4).await;
        assert_eq!(devices(&g.flush_due(now, |_| p.clone())), [vec!["a", "b"]]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_immediate_policy_sends_each_batch_as_one_message() {
        let p = Policy::immediate();
        let mut g = Groups::default();
        let now = Instant::now();
        g.push(0, &p, notice(1, "a", "e-01", NoticeState::Firing), now);
        g.push(0, &p, notice(2, "x", "e-02", NoticeState::Firing), now);
        assert_eq!(devices(&g.flush_due(now, |_| p.clone())), [vec!["a", "x"]]);
        g.push(0, &p, notice(3, "a", "e-01", NoticeState::Resolved), now);
        assert_eq!(devices(&g.flush_due(now, |_| p.clone())), [vec!["a"]]);
        let later = sleep(100_000).await;
        assert!(g.flush_due(later, |_| p.clone()).is_empty(), "no repeats");
    }
}
