//! A device's status as another cluster member says it (see docs/cluster.md): the
//! member that owns the device's shard probes it and writes its transitions; every other
//! member shows them, from the live event feed or from PostgreSQL's `device_state`.
//!
//! Such a word changes the snapshot and is broadcast like a decided transition, so
//! pages, JSON and SSE show every device on every member, but it goes to no store (its
//! owner wrote it). It also becomes the device's machine, as a restart restores it: when
//! this member takes the shard over, its first verdict continues the outage it was told
//! of, with the same `down_since`.
//!
//! Words may arrive late or twice (the feed and the fallback overlap): one older than
//! the word shown is dropped, so a device never steps back and a transition is
//! broadcast once. But a word is never older than this member's *own* decision: that
//! decision was shown before it was committed, and if the owner's word differs it never
//! was (its lease was lost first, and the write refused as stale). The owner's word
//! then corrects it, as a change made now. Times are taken to the microsecond, as PostgreSQL keeps them: the
//! same word from the feed and from the database is the same word.

use std::sync::atomic::Ordering;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::{DeviceStatus, Event, Machine, State, Status, Transition};
use crate::state::machine::Change;

/// What the owner of a device said of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word {
    pub status: Status,
    pub down_since: Option<DateTime<Utc>>,
    /// When the owner decided it.
    pub at: DateTime<Utc>,
}

impl State {
    /// Takes `word` as device `name`'s status, unless the status shown was decided after
    /// it. Returns the transition it broadcast, if the status changed. The caller makes
    /// sure this member does not own the device (it would overwrite its own verdicts).
    pub fn apply_foreign(&self, name: &str, word: Word) -> Option<Transition> {
        let word = Word {
            at: micros(word.at),
            down_since: word.down_since.map(micros),
            ..word
        };
        let maintenance_ends_at = {
            let snapshot = self.shared.snapshot.load();
            let (device, _, _) = snapshot.device(name)?;
            self.maintenance_ends(device, word.at)
        };
        let _writer = self.shared.writer.lock();
        let old = self.shared.snapshot.load_full();
        let i = old.inventory.index_of(name)?;
        let shown = old.status[i];
        let runtime = &old.runtime[i];
        let newer_shown = shown.changed_at.is_some_and(|t| t > word.at);
        let told = runtime.told.swap(true, Ordering::Relaxed);
        if told && newer_shown {
            return None;
        }
        let down_since = word.down_since.filter(|_| is_out(word.status));
        *runtime.machine.lock() = Machine::restored(word.status, down_since);
        if shown.status == word.status && shown.down_since.map(micros) == down_since {
            return None;
        }
        // A correction of this member's own decision, which never reached the database.
        let at = if newer_shown {
            micros(self.shared.clock.now())
        } else {
            word.at
        };
        let mut next = super::Snapshot::clone(&old);
        next.version += 1;
        next.status.set(
            i,
            DeviceStatus {
                status: word.status,
                down_since,
                changed_at: Some(at),
                // The owner's measurements stay with the owner.
                degraded: None,
            },
        );
        let transition = Transition {
            version: next.version,
            device: old.inventory.devices[i].clone(),
            change: Change {
                from: shown.status,
                to: word.status,
                at,
                down_since,
                was_down_since: shown.down_since,
            },
            maintenance_ends_at,
            alert_held: false,
        };
        self.shared.snapshot.store(std::sync::Arc::new(next));
        let _ = self
            .shared
            .events
            .send(std::sync::Arc::new(Event::Transition(transition.clone())));
        Some(transition)
    }
}

fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

fn is_out(status: Status) -> bool {
    matches!(status, Status::Down | Status::Unreachable)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;
    use tokio::sync::mpsc;

    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn state_of(names: &[&str]) -> (State, mpsc::UnboundedReceiver<super::super::StoreEvent>) {
        let (sink, feed) = mpsc::unbounded_channel();
        let state = State::with_sink(Arc::new(crate::state::SystemClock), sink);
        let yaml = format!(
            "regions:\n  - name: r\n    branches:\n      - name: b\n        devices:\n{}",
            names
                .iter()
                .enumerate()
                .map(|(i, n)| format!(
                    "          - {{ name: {n}, address: 127.0.3.{}, kind: atm }}\n",
                    i + 1
                ))
                .collect::<String>()
        );
        let inventory = crate::config::load::inventory_of(&yaml);
        state.replace_inventory(Arc::new(inventory), |_| None);
        (state, feed)
    }

    fn word(status: Status, since: Option<i64>, decided: i64) -> Word {
        Word {
            status,
            down_since: since.map(at),
            at: at(decided),
        }
    }

    #[test]
    fn the_owners_word_is_shown_and_broadcast_but_not_stored() {
        let (state, mut store) = state_of(&["atm-1", "atm-2"]);
        while store.try_recv().is_ok() {}
        let mut events = state.subscribe();
        let version = state.snapshot().version;
        let t = state
            .apply_foreign("atm-1", word(Status::Down, Some(10), 40))
            .expect("a change");
        assert_eq!(
            (t.change.from, t.change.to),
            (Status::Unknown, Status::Down)
        );
        assert_eq!(t.version, version + 1);
        let snapshot = state.snapshot();
        let (_, status, runtime) = snapshot.device("atm-1").unwrap();
        assert_eq!(status.status, Status::Down);
        assert_eq!(status.down_since, Some(at(10)));
        assert_eq!(status.changed_at, Some(at(40)));
        // The machine continues that outage if this member takes the device over.
        assert_eq!(runtime.machine.lock().down_since(), Some(at(10)));
        assert!(
            matches!(&*events.try_recv().unwrap(), Event::Transition(e) if e.version == t.version)
        );
        assert!(
            store.try_recv().is_err(),
            "the owner stored it, not this member"
        );
        // The same word again (the fallback read after the feed): nothing new.
        assert!(
            state
                .apply_foreign("atm-1", word(Status::Down, Some(10), 40))
                .is_none()
        );
        assert!(events.try_recv().is_err());
        assert_eq!(state.snapshot().version, version + 1);
        // Nor the feed's word after the database's: the database keeps microseconds
        // where the feed has nanoseconds.
        let stored = Word {
            status: Status::Down,
            down_since: Some(at(20) + TimeDelta::microseconds(1)),
            at: at(50) + TimeDelta::microseconds(1),
        };
        assert!(
            state.apply_foreign("atm-1", stored).is_some(),
            "a new outage"
        );
        let precise = Word {
            down_since: Some(at(20) + TimeDelta::nanoseconds(1_789)),
            at: at(50) + TimeDelta::nanoseconds(1_789),
            ..stored
        };
        assert!(state.apply_foreign("atm-1", precise).is_none());
        assert_eq!(
            state.snapshot().version,
            version + 2,
            "one transition for the new outage"
        );
    }

    #[test]
    fn an_older_word_never_steps_a_device_back() {
        let (state, _store) = state_of(&["atm-1"]);
        state.apply_foreign("atm-1", word(Status::Down, Some(10), 40));
        state.apply_foreign("atm-1", word(Status::Up, None, 90));
        // The feed delivers the outage late, after a fallback read had the recovery.
        assert!(
            state
                .apply_foreign("atm-1", word(Status::Down, Some(10), 40))
                .is_none()
        );
        let snapshot = state.snapshot();
        let (_, status, runtime) = snapshot.device("atm-1").unwrap();
        assert_eq!((status.status, status.down_since), (Status::Up, None));
        assert_eq!(runtime.machine.lock().status(), Status::Up);
        // This member's own decision, newer than the owner's word: never committed, so the
        // word corrects it, as a change made now.
        runtime.told.store(false, Ordering::Relaxed);
        drop(snapshot);
        let t = state
            .apply_foreign("atm-1", word(Status::Down, Some(10), 40))
            .expect("a correction");
        assert_eq!((t.change.from, t.change.to), (Status::Up, Status::Down));
        assert!(t.change.at > at(90), "a correction is a change of now");
        assert_eq!(t.change.down_since, Some(at(10)));
        // An unknown device is no error: the inventory may not have reached it yet.
        assert!(
            state
                .apply_foreign("nobody", word(Status::Up, None, 99))
                .is_none()
        );
    }
}
