//! The versioned runs of every device's JSON, written once per (state version,
//! inventory) and shared by the large list bodies of that version: a full
//! `GET /api/v1/devices` then copies them and writes only what is live per request.
//!
//! A device's JSON is a sequence of runs ([`super::write_device_fields`]). Three of them
//! derive from the snapshot alone — the head (inventory entry, status, its times), the
//! graph (parents, and why an unreachable device is so) and the `degraded` condition —
//! and are kept here. The others are written per request, as before: the measurements
//! (`last_rtt_ms`, `loss`, `last_probe_at` change without a version), the maintenance
//! (as of now), the ISP lines (their traffic is live) and the open alert counts (the
//! store's). So a kept body is never stale: the runs are those of the snapshot's own
//! version and inventory, and everything else is read when the request is.
//!
//! Cost: the bytes of the runs, about 240 a device with `wardops demo`'s names and
//! labels (a device that is not degraded keeps no `degraded` run): 2.4 MB at 10,000
//! devices, 24 MB at 100,000. They are made by the first large body of a version (a
//! quarter of the fleet or more) and freed when a newer version's replace them; a
//! smaller page uses them when they are there and is written directly otherwise, so
//! paging clients never make them.

use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::{
    Extras, write_degraded, write_graph, write_head, write_maintenance, write_measurements,
    write_tail,
};
use crate::config::Inventory;
use crate::read_model::{TimeWriter, unreachable_because};
use crate::state::{Measurements, Snapshot, Status};

/// The kept runs of one snapshot, made on first use.
pub struct Kept {
    version: u64,
    /// Held so that the pointer comparison cannot be fooled by a reused address.
    inventory: Arc<Inventory>,
    runs: OnceLock<Runs>,
}

/// Every device's runs, in inventory order, in one buffer.
pub struct Runs {
    buf: Vec<u8>,
    /// `3 × devices + 1` offsets into `buf`: device `i`'s head, graph and `degraded`
    /// runs start at `3i`, `3i + 1` and `3i + 2`; each ends where the next starts.
    offsets: Vec<u32>,
}

impl Kept {
    /// True if these are the runs of `snapshot` (same version of the same inventory).
    pub fn is_for(&self, snapshot: &Snapshot) -> bool {
        self.version == snapshot.version && Arc::ptr_eq(&self.inventory, &snapshot.inventory)
    }

    /// The runs of `snapshot` (which this must be for), written by the first caller;
    /// concurrent callers wait for that one rather than write them again.
    pub fn runs(&self, snapshot: &Snapshot) -> &Runs {
        debug_assert!(
            self.is_for(snapshot),
            "kept runs used with another snapshot"
        );
        self.runs.get_or_init(|| Runs::of(snapshot))
    }

    /// The runs if already written.
    pub fn written(&self) -> Option<&Runs> {
        self.runs.get()
    }
}

impl Runs {
    fn of(snapshot: &Snapshot) -> Runs {
        let n = snapshot.inventory.devices.len();
        let mut buf = Vec::with_capacity(n * 200);
        let mut offsets = Vec::with_capacity(3 * n + 1);
        let mut times = TimeWriter::default();
        let at = |buf: &Vec<u8>| u32::try_from(buf.len()).expect("kept runs under 4 GiB");
        for (device, status, _) in snapshot.devices() {
            offsets.push(at(&buf));
            write_head(&mut buf, &mut times, device, status);
            offsets.push(at(&buf));
            let because = (status.status == Status::Unreachable)
                .then(|| unreachable_because(snapshot, device));
            write_graph(&mut buf, device, because.as_deref());
            offsets.push(at(&buf));
            if status.degraded.is_some() {
                write_degraded(&mut buf, &mut times, status.degraded.as_ref());
            }
        }
        offsets.push(at(&buf));
        buf.shrink_to_fit();
        Runs { buf, offsets }
    }

    fn run(&self, k: usize) -> &[u8] {
        &self.buf[self.offsets[k] as usize..self.offsets[k + 1] as usize]
    }

    /// Device `i`'s head: `"name":…` to `"status_changed_at":…`.
    pub fn head(&self, i: usize) -> &[u8] {
        self.run(3 * i)
    }

    /// Device `i`'s `,"parents":…` (and `,"unreachable_because":…`).
    pub fn graph(&self, i: usize) -> &[u8] {
        self.run(3 * i + 1)
    }

    /// Device `i`'s `,"degraded":true,…`; empty when it is not degraded (the writer's
    /// constant then).
    pub fn degraded(&self, i: usize) -> &[u8] {
        self.run(3 * i + 2)
    }

    /// [`super::write_device_fields`] for device `i` of the snapshot these runs are
    /// for: the kept runs copied, the live ones written from `m` and `extras` (whose
    /// `unreachable_because` is in the graph run already).
    pub fn write_fields(
        &self,
        out: &mut Vec<u8>,
        times: &mut TimeWriter,
        i: usize,
        m: &Measurements,
        extras: Extras,
    ) {
        out.extend_from_slice(self.head(i));
        write_measurements(out, times, m);
        out.extend_from_slice(self.graph(i));
        write_maintenance(out, times, extras.maintenance_ends_at);
        match self.degraded(i) {
            [] => write_degraded(out, times, None),
            run => out.extend_from_slice(run),
        }
        write_tail(out, extras.uplinks, extras.open_alerts);
    }

    /// Bytes of kept runs, of every device.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True for an inventory without devices.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.buf.capacity() + self.offsets.capacity() * 4
    }
}

/// The kept runs of the newest version read so far. One per state (the context owns
/// it); the unscoped list reads it, a scoped one writes its devices directly.
#[derive(Default)]
pub struct KeptCache {
    current: Mutex<Option<Arc<Kept>>>,
}

impl KeptCache {
    /// The entry for `snapshot`: the current one when it is for it; a new one, made
    /// current, when `snapshot` is newer; None for an older snapshot (a request still
    /// holding one writes its devices directly, and does not evict the newer runs).
    pub fn get(&self, snapshot: &Snapshot) -> Option<Arc<Kept>> {
        let mut current = self.current.lock();
        match &*current {
            Some(kept) if kept.is_for(snapshot) => Some(kept.clone()),
            Some(kept) if kept.version > snapshot.version => None,
            _ => {
                let kept = Arc::new(Kept {
                    version: snapshot.version,
                    inventory: snapshot.inventory.clone(),
                    runs: OnceLock::new(),
                });
                *current = Some(kept.clone());
                Some(kept)
            }
        }
    }

    /// The entry for `snapshot` only if it is current and its runs are written.
    pub fn written(&self, snapshot: &Snapshot) -> Option<Arc<Kept>> {
        self.current
            .lock()
            .as_ref()
            .filter(|k| k.is_for(snapshot) && k.written().is_some())
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::api::devices::{devices_json_kept, devices_json_with_alerts};
    use crate::config::load::inventory_of;
    use crate::probe::ProbeOutcome;
    use crate::read_model::{ListQuery, OrderCache};
    use crate::state::{Machine, State, SystemClock};

    const INVENTORY: &str = r#"
regions:
  - name: r
    probe: { down_after: 1, up_after: 1 }
    branches:
      - name: b
        devices:
          - { name: core, address: 127.70.0.1, kind: atm, labels: { site: "q\"a\\b" } }
          - { name: gw1, address: 127.70.0.2, kind: router, parents: [core] }
          - { name: a, address: "::1", kind: atm, parents: [gw1] }
          - { name: "</script>", address: 127.70.0.4, kind: atm }
"#;

    fn state() -> State {
        let state = State::new(Arc::new(SystemClock));
        let since = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        state.replace_inventory(Arc::new(inventory_of(INVENTORY)), |d| {
            let status = match &*d.name {
                "core" => Status::Down,
                "gw1" | "a" => Status::Unreachable,
                _ => Status::Up,
            };
            Some(Machine::restored(status, Some(since)))
        });
        state
    }

    fn probe(state: &State, name: &str, ok: bool, at: i64, rtt_us: u64) {
        let snapshot = state.snapshot();
        let (d, _, rt) = snapshot.device(name).unwrap();
        let outcome = ProbeOutcome {
            sent: 2,
            received: if ok { 2 } else { 0 },
            rtt: ok.then_some(Duration::from_micros(rtt_us)),
        };
        state.record_probe(
            d,
            rt,
            &outcome,
            Utc.timestamp_opt(1_800_000_000 + at, 0).unwrap(),
        );
    }

    /// The kept body and the directly written one, which must be the same bytes.
    fn both(state: &State, order: &OrderCache, kept: &KeptCache) -> (String, String) {
        let snapshot = state.snapshot();
        let all = ListQuery::default();
        let direct = devices_json_with_alerts(&snapshot, &all, Some(order), None);
        let copied = devices_json_kept(&snapshot, &all, Some(order), None, kept);
        (
            String::from_utf8(direct).unwrap(),
            String::from_utf8(copied).unwrap(),
        )
    }

    #[test]
    fn a_kept_body_is_the_written_one_and_follows_each_version_and_live_measurement() {
        let state = state();
        let (order, kept) = (OrderCache::default(), KeptCache::default());
        probe(&state, "</script>", true, 1, 1500);
        let (direct, copied) = both(&state, &order, &kept);
        assert_eq!(copied, direct);
        assert!(
            direct.contains(r#""unreachable_because":["gw1"]"#),
            "{direct}"
        );
        let first = kept
            .written(&state.snapshot())
            .expect("a full body keeps its runs");
        assert_eq!(
            both(&state, &order, &kept).1,
            direct,
            "the same version again"
        );
        assert!(Arc::ptr_eq(
            &first,
            &kept.written(&state.snapshot()).unwrap()
        ));

        // A measurement changes without a version: the kept body shows it.
        let version = state.snapshot().version;
        probe(&state, "</script>", true, 7, 2500);
        assert_eq!(state.snapshot().version, version, "no transition");
        let (direct, copied) = both(&state, &order, &kept);
        assert_eq!(copied, direct);
        assert!(copied.contains(r#""last_rtt_ms":2.5"#), "{copied}");
        assert!(copied.contains("2027-01-15T08:00:07"), "{copied}");

        // A transition bumps the version: the next body is the new version's.
        probe(&state, "core", true, 8, 500);
        let new = state.snapshot();
        assert!(new.version > version);
        let (direct, copied) = both(&state, &order, &kept);
        assert_eq!(copied, direct);
        assert!(copied.starts_with(&format!(r#"{{"state_version":{},"#, new.version)));
        assert!(
            !copied.contains(r#""ping_status":"down""#),
            "core is up: {copied}"
        );
        assert!(!Arc::ptr_eq(&first, &kept.written(&new).unwrap()));
        // A request still holding the old snapshot is written directly, not from the new runs.
        assert!(kept.get(&first_snapshot_like(&new, version)).is_none());
    }

    /// A snapshot of `like`'s inventory at an older `version`.
    fn first_snapshot_like(like: &Snapshot, version: u64) -> Snapshot {
        Snapshot {
            version,
            inventory: like.inventory.clone(),
            status: like.status.clone(),
            runtime: like.runtime.clone(),
            uplinks: like.uplinks.clone(),
        }
    }
}
