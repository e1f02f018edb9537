//! What applying the writer's records means, once for both backends: which records a
//! replay skips, what each transition writes, which alerts it opens or resolves, when a
//! device is flapping, and which alert changes the commit reports. The backends supply
//! only their SQL, as the primitives of [`Sql`] over one open transaction.
//!
//! Transitions are applied in *runs* of consecutive records of distinct devices, each run
//! a handful of statements however long it is (PostgreSQL binds whole arrays): a region
//! going dark is 10,000 transitions of 10,000 devices. No device appears twice in a run,
//! so deciding each of its transitions from the database as it was before the run is the
//! same as deciding them one after the other.
//!
//! `degraded` alert records are batched the same way, apart from the transitions (they
//! touch another condition): each batch of distinct devices is one statement per
//! resolution and one for the openings ([`degraded`]).
//!
//! A cluster member's batches go through [`fenced`] instead: the same writes, in the
//! same transaction as the check of their leases and the cluster outbox.

pub(super) mod fenced;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::record::WarningChange;
use super::{
    AlertChange, AlertEvent, AlertRow, AlertRules, AuditEntry, DeviceRow, DeviceScope, Record,
    RecordKind, Result, StoreError,
};
use crate::maintenance::Silence;

/// One transition of a run, as the SQL writes it.
pub(super) struct Change<'a> {
    pub boot: &'a str,
    pub device: &'a str,
    pub address: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub at: DateTime<Utc>,
    pub down_since: Option<DateTime<Utc>>,
    pub version: i64,
    /// Decided inside a maintenance window: stored as such, opens no flapping alert.
    pub in_maintenance: bool,
    /// A change to `down` whose `device_down` alert waits for the window's end.
    pub alert_held: bool,
}

/// An alert to open unless one of its (device, condition) is open already.
pub(super) struct NewAlert {
    pub device: String,
    pub condition: &'static str,
    pub severity: &'static str,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// One row of the notification outbox: an alert change to tell receivers of.
pub(super) struct OutboxEntry {
    pub alert_id: i64,
    pub change: &'static str,
    pub at: DateTime<Utc>,
    pub down_since: Option<DateTime<Utc>>,
}

/// A heartbeat of one run of the appliance (see [`RecordKind::Run`]).
pub(super) struct RunMark<'a> {
    pub boot: &'a str,
    pub started_at: DateTime<Utc>,
    /// The record's time: the run was going on then.
    pub seen_at: DateTime<Utc>,
    /// A clean stop: nothing more comes from this run.
    pub stopped: bool,
}

/// One write transaction of a backend. Every method is one decision's SQL, applied to
/// all the rows it is given; none decides anything itself.
pub(super) trait Sql: Send {
    /// The last sequence number of `boot` applied (0: none).
    async fn last_seq(&mut self, boot: &str) -> Result<i64>;
    /// Raises the last sequence number of `boot` applied to `seq`.
    async fn set_last_seq(&mut self, boot: &str, seq: i64) -> Result<()>;
    /// For each (device, since), in order: its transitions strictly after `since` that
    /// count as flaps (from a decided status, not `unknown`, neither from nor to
    /// `unreachable`, and not in maintenance).
    async fn recent_changes(&mut self, asks: &[(&str, DateTime<Utc>)]) -> Result<Vec<i64>>;
    /// Inserts the transitions of a run and sets each device's current state; a device
    /// that was down or unreachable and is decided down or unreachable again keeps its
    /// stored `down_since` (one outage).
    async fn write_transitions(&mut self, run: &[Change<'_>]) -> Result<()>;
    /// Opens the alerts whose (device, condition) has none open; returns those opened.
    async fn open_alerts(&mut self, alerts: &[NewAlert]) -> Result<Vec<AlertRow>>;
    /// Resolves the open alerts of each (device, at) — of `condition` only, if given — at
    /// `at` with `resolution`; returns those resolved.
    async fn resolve_alerts(
        &mut self,
        devices: &[(&str, DateTime<Utc>)],
        condition: Option<&str>,
        resolution: &str,
    ) -> Result<Vec<AlertRow>>;
    /// Resolves, at `now` with `stable`, the `flapping` alerts of devices with no
    /// transition after `since`; returns those resolved.
    async fn resolve_quiet_flapping(
        &mut self,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<Vec<AlertRow>>;
    async fn upsert_devices(&mut self, at: DateTime<Utc>, devices: &[DeviceRow]) -> Result<()>;
    /// Marks the devices removed and forgets their current state (history stays).
    async fn remove_devices(&mut self, at: DateTime<Utc>, names: &[String]) -> Result<()>;
    /// Region, branch and kind of each named device the store has a row for.
    async fn scopes(&mut self, names: &[&str]) -> Result<Vec<(String, DeviceScope)>>;
    /// Appends the notification outbox's rows, in order (their ids are that order).
    async fn write_outbox(&mut self, rows: &[OutboxEntry]) -> Result<()>;
    /// Sets the acknowledgement of alert `id` if it is open; returns it then.
    async fn acknowledge(
        &mut self,
        id: i64,
        at: DateTime<Utc>,
        by: &str,
        comment: Option<&str>,
    ) -> Result<Option<AlertRow>>;
    /// Clears the acknowledgement of alert `id` if it is open and acknowledged; returns
    /// it then.
    async fn unacknowledge(&mut self, id: i64) -> Result<Option<AlertRow>>;
    /// Appends one entry to the audit log.
    async fn write_audit(&mut self, at: DateTime<Utc>, entry: &AuditEntry) -> Result<()>;
    /// Stores a silence, unless one with its id is stored.
    async fn write_silence(&mut self, silence: &Silence) -> Result<()>;
    /// Stores that run `boot` was going on at `seen_at` (never moving its last
    /// heartbeat back: a replayed older mark is a no-op).
    async fn write_run(&mut self, run: &RunMark<'_>) -> Result<()>;
    /// Ends silence `id` at `at` if it has not ended by then.
    async fn expire_silence(&mut self, id: &str, at: DateTime<Utc>, by: &str) -> Result<()>;
    async fn commit(self) -> Result<()>;
}

/// Applies `records` in order in the transaction `sql`, skipping those applied before,
/// and commits. Returns the alerts the commit opened and resolved, in record order.
pub(super) async fn apply<S: Sql>(
    mut sql: S,
    rules: &AlertRules,
    records: &[Record],
) -> Result<Vec<AlertEvent>> {
    let records: Vec<&Record> = records.iter().collect();
    let written = write(&mut sql, rules, &records).await?;
    // A lost answer to COMMIT is told apart: the writer then re-reads the open alerts.
    sql.commit().await.map_err(StoreError::of_commit)?;
    Ok(written.alerts)
}

/// What [`write`] did in its open transaction.
pub(super) struct Written<'r> {
    /// The alerts it opened and resolved, in record order, with their scopes.
    pub alerts: Vec<AlertEvent>,
    /// The records it applied (not those a replay skipped), in order.
    pub applied: Vec<&'r Record>,
}

/// Applies `records` in order in the open transaction `sql`, skipping those applied
/// before; the caller commits (or adds to the transaction first).
pub(super) async fn write<'r, S: Sql>(
    sql: &mut S,
    rules: &AlertRules,
    records: &[&'r Record],
) -> Result<Written<'r>> {
    let mut applied = Vec::new();
    // Per boot: the last sequence number in the database, and the last one applied now.
    let mut progress: HashMap<&str, (i64, i64)> = HashMap::new();
    let mut events = Vec::new();
    let mut run: Vec<Change> = Vec::new();
    let mut in_run: HashSet<&str> = HashSet::new();
    let mut warnings: Vec<&Record> = Vec::new();
    let mut in_warnings: HashSet<&str> = HashSet::new();
    // The outage start of each `device_down` alert opened, for its outbox row.
    let mut downs: HashMap<i64, DateTime<Utc>> = HashMap::new();
    for &r in records {
        if !progress.contains_key(r.boot.as_str()) {
            let stored = sql.last_seq(&r.boot).await?;
            progress.insert(&r.boot, (stored, stored));
        }
        let last = &mut progress.get_mut(r.boot.as_str()).expect("inserted above").1;
        if r.seq as i64 <= *last {
            continue; // applied before a crash or a lost commit acknowledgement
        }
        *last = r.seq as i64;
        applied.push(r);
        match &r.kind {
            RecordKind::Transition {
                device,
                address,
                from,
                to,
                down_since,
                version,
                in_maintenance,
                alert_held,
            } => {
                if !in_run.insert(device) {
                    transitions(sql, rules, &run, &mut events, &mut downs).await?;
                    run.clear();
                    in_run.clear();
                    in_run.insert(device);
                }
                run.push(Change {
                    boot: &r.boot,
                    device,
                    address,
                    from,
                    to,
                    at: r.at,
                    down_since: *down_since,
                    version: *version as i64,
                    in_maintenance: *in_maintenance,
                    alert_held: *alert_held,
                });
            }
            RecordKind::HeldAlert {
                device,
                address,
                down_since,
            } => {
                // After the device's earlier transitions, which may have opened it already
                // (the one-open-alert rule then makes this a no-op).
                transitions(sql, rules, &run, &mut events, &mut downs).await?;
                run.clear();
                in_run.clear();
                let alert = NewAlert {
                    device: device.clone(),
                    condition: "device_down",
                    severity: "critical",
                    message: super::down_message(device, address, *down_since),
                    at: r.at,
                };
                let opened = sql.open_alerts(&[alert]).await?;
                if let Some(since) = down_since {
                    downs.extend(opened.iter().map(|a| (a.id, *since)));
                }
                events.extend(opened.into_iter().map(|alert| AlertEvent {
                    change: AlertChange::Opened,
                    alert,
                    scope: None,
                }));
            }
            RecordKind::DegradedOpened { device, .. }
            | RecordKind::DegradedResolved { device, .. }
            | RecordKind::UplinkOpened { device, .. }
            | RecordKind::UplinkResolved { device, .. } => {
                if !in_warnings.insert(device) {
                    warnings_of(sql, &warnings, &mut events).await?;
                    warnings.clear();
                    in_warnings.clear();
                    in_warnings.insert(device);
                }
                warnings.push(r);
            }
            RecordKind::Devices { upsert, removed } => {
                transitions(sql, rules, &run, &mut events, &mut downs).await?;
                run.clear();
                in_run.clear();
                warnings_of(sql, &warnings, &mut events).await?;
                warnings.clear();
                in_warnings.clear();
                sql.upsert_devices(r.at, upsert).await?;
                if !removed.is_empty() {
                    sql.remove_devices(r.at, removed).await?;
                    let gone: Vec<_> = removed.iter().map(|n| (n.as_str(), r.at)).collect();
                    let mut resolved = sql.resolve_alerts(&gone, None, "removed").await?;
                    resolved.sort_by_key(|a| a.id);
                    events.extend(resolved.into_iter().map(resolved_event));
                }
            }
            RecordKind::Acknowledge { alert, by, comment } => {
                // After the transitions before it: one that resolved the alert wins, and
                // the acknowledgement is then a no-op.
                transitions(sql, rules, &run, &mut events, &mut downs).await?;
                run.clear();
                in_run.clear();
                warnings_of(sql, &warnings, &mut events).await?;
                warnings.clear();
                in_warnings.clear();
                let comment = Some(comment.as_str()).filter(|c| !c.is_empty());
                if let Some(a) = sql.acknowledge(*alert, r.at, by, comment).await? {
                    events.push(updated_event(a));
                }
            }
            RecordKind::Unacknowledge { alert, .. } => {
                transitions(sql, rules, &run, &mut events, &mut downs).await?;
                run.clear();
                in_run.clear();
                warnings_of(sql, &warnings, &mut events).await?;
                warnings.clear();
                in_warnings.clear();
                if let Some(a) = sql.unacknowledge(*alert).await? {
                    events.push(updated_event(a));
                }
            }
            // Touches no alert: written where it comes, whatever the runs around it.
            RecordKind::Audit(entry) => sql.write_audit(r.at, entry).await?,
            RecordKind::Silence(s) => sql.write_silence(s).await?,
            RecordKind::SilenceExpired { id, by } => sql.expire_silence(id, r.at, by).await?,
            RecordKind::Run {
                started_at,
                stopped,
            } => {
                let mark = RunMark {
                    boot: &r.boot,
                    started_at: *started_at,
                    seen_at: r.at,
                    stopped: *stopped,
                };
                sql.write_run(&mark).await?
            }
        }
    }
    transitions(sql, rules, &run, &mut events, &mut downs).await?;
    warnings_of(sql, &warnings, &mut events).await?;
    for (boot, (stored, applied)) in progress {
        if applied > stored {
            sql.set_last_seq(boot, applied).await?;
        }
    }
    write_outbox(sql, &events, &downs).await?;
    add_scopes(sql, &mut events).await?;
    Ok(Written {
        alerts: events,
        applied,
    })
}

/// Resolves the `flapping` alerts of devices that have been stable for the window, and
/// commits.
pub(super) async fn resolve_stable_flapping<S: Sql>(
    mut sql: S,
    rules: &AlertRules,
    now: DateTime<Utc>,
) -> Result<Vec<AlertEvent>> {
    let since = now - window(rules);
    let resolved = sql.resolve_quiet_flapping(now, since).await?;
    let mut events: Vec<_> = resolved.into_iter().map(resolved_event).collect();
    events.sort_by_key(|e| e.alert.id);
    write_outbox(&mut sql, &events, &HashMap::new()).await?;
    add_scopes(&mut sql, &mut events).await?;
    sql.commit().await.map_err(StoreError::of_commit)?;
    Ok(events)
}

/// Writes one run and decides its alerts; appends what they did to `events`.
async fn transitions<S: Sql>(
    sql: &mut S,
    rules: &AlertRules,
    run: &[Change<'_>],
    events: &mut Vec<AlertEvent>,
    downs: &mut HashMap<i64, DateTime<Utc>>,
) -> Result<()> {
    if run.is_empty() {
        return Ok(());
    }
    // Deciding a first status (`from` unknown) is not a flap, nor is a change to or from
    // `unreachable` (its parent's change, whose own flapping is alerted on: a branch
    // whose gateway flaps is one flapping alert, not one per device); counted before the
    // run is written, so each count lacks the transition itself.
    let asks: Vec<_> = run
        .iter()
        .filter(|c| may_open_flapping(c))
        .map(|c| (c.device, c.at - window(rules)))
        .collect();
    let mut earlier = if asks.is_empty() {
        Vec::new()
    } else {
        sql.recent_changes(&asks).await?
    }
    .into_iter();
    sql.write_transitions(run).await?;
    let mut open = Vec::new();
    let mut recovered = Vec::new();
    for c in run {
        match c.to {
            // Also `unreachable -> down` (a parent answered while this device still does
            // not): its outage is its own from now on, the alert opens at `at`.
            // Held by maintenance: opened by a `HeldAlert` record at the window's end.
            "down" if c.alert_held => {}
            "down" => open.push(NewAlert {
                device: c.device.into(),
                condition: "device_down",
                severity: "critical",
                message: super::down_message(c.device, c.address, c.down_since),
                at: c.at,
            }),
            "up" => recovered.push((c.device, c.at)),
            // Suppress creation, never resolution: the outage is its parent's, whose alert
            // counts it; an alert this device had open stays open until it answers.
            "unreachable" => {}
            _ => {}
        }
        if !may_open_flapping(c) {
            continue;
        }
        let changes = 1 + earlier.next().unwrap_or(0);
        if changes >= i64::from(rules.flapping_transitions) {
            open.push(NewAlert {
                device: c.device.into(),
                condition: "flapping",
                severity: "warning",
                message: super::flapping_message(c.device, changes, rules.flapping_window),
                at: c.at,
            });
        }
    }
    let mut done: Vec<AlertEvent> = Vec::new();
    if !recovered.is_empty() {
        let resolved = sql
            .resolve_alerts(&recovered, Some("device_down"), "recovered")
            .await?;
        done.extend(resolved.into_iter().map(resolved_event));
    }
    if !open.is_empty() {
        let opened = sql.open_alerts(&open).await?;
        let since: HashMap<&str, DateTime<Utc>> = run
            .iter()
            .filter_map(|c| Some((c.device, c.down_since?)))
            .collect();
        for a in opened.iter().filter(|a| a.condition == "device_down") {
            if let Some(t) = since.get(a.device.as_str()) {
                downs.insert(a.id, *t);
            }
        }
        done.extend(opened.into_iter().map(|alert| AlertEvent {
            change: AlertChange::Opened,
            alert,
            scope: None,
        }));
    }
    // The database returns rows in no promised order: put them in the order of the
    // records that caused them, a device's outage before its flapping.
    let position: HashMap<&str, usize> =
        run.iter().enumerate().map(|(i, c)| (c.device, i)).collect();
    done.sort_by_key(|e| {
        let at = position.get(e.alert.device.as_str()).copied();
        (at, e.alert.condition != "device_down", e.alert.id)
    });
    events.extend(done);
    Ok(())
}

/// Opens and resolves the warnings (`degraded`, `uplink_down`) of `batch` (records of
/// distinct devices); appends what they did to `events`, in the order of their records.
async fn warnings_of<S: Sql>(
    sql: &mut S,
    batch: &[&Record],
    events: &mut Vec<AlertEvent>,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut open = Vec::new();
    // Per condition and resolution, in first-seen order: the devices it resolves, when.
    type Resolutions<'r> = Vec<((&'static str, &'r str), Vec<(&'r str, DateTime<Utc>)>)>;
    let mut resolve: Resolutions = Vec::new();
    for r in batch {
        let Some(w) = r.kind.warning() else { continue };
        match w.change {
            WarningChange::Open(message) => open.push(NewAlert {
                device: w.device.to_string(),
                condition: w.condition,
                severity: "warning",
                message: message.to_string(),
                at: r.at,
            }),
            WarningChange::Resolve(resolution) => {
                let key = (w.condition, resolution);
                let at = (w.device, r.at);
                match resolve.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, devices)) => devices.push(at),
                    None => resolve.push((key, vec![at])),
                }
            }
        }
    }
    let mut done = Vec::new();
    for ((condition, resolution), devices) in &resolve {
        let resolved = sql
            .resolve_alerts(devices, Some(condition), resolution)
            .await?;
        done.extend(resolved.into_iter().map(resolved_event));
    }
    if !open.is_empty() {
        let opened = sql.open_alerts(&open).await?;
        done.extend(opened.into_iter().map(|alert| AlertEvent {
            change: AlertChange::Opened,
            alert,
            scope: None,
        }));
    }
    let position: HashMap<&str, usize> = batch
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((r.kind.warning()?.device, i)))
        .collect();
    done.sort_by_key(|e| (position.get(e.alert.device.as_str()).copied(), e.alert.id));
    events.extend(done);
    Ok(())
}

/// True if `c` is one of the device's own changes of status, as flapping counts them:
/// not its first decision, not a change to or from `unreachable`. The backends'
/// `recent_changes` count the stored transitions by the same rule.
fn counts_as_flap(c: &Change) -> bool {
    c.from != "unknown" && c.from != "unreachable" && c.to != "unreachable"
}

/// True if `c` may open a `flapping` alert: one of the device's own changes, decided
/// outside maintenance (planned work flaps by design; the backends' `recent_changes`
/// do not count its changes either).
fn may_open_flapping(c: &Change) -> bool {
    counts_as_flap(c) && !c.in_maintenance
}

/// The outbox rows of a commit's alert changes, in their order: the decision to notify
/// commits with the change or not at all. Every change is written, whether or not any
/// receiver is configured: routing is the sender's (it needs the inventory's labels), and
/// a receiver added later starts after the rows that were there before it.
async fn write_outbox<S: Sql>(
    sql: &mut S,
    events: &[AlertEvent],
    downs: &HashMap<i64, DateTime<Utc>>,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    // An acknowledgement is not a change receivers are told of: it only stops the
    // repeats, which the dispatcher decides from the commit's report.
    let rows: Vec<OutboxEntry> = events
        .iter()
        .filter_map(|e| match e.change {
            AlertChange::Opened => Some(OutboxEntry {
                alert_id: e.alert.id,
                change: "opened",
                at: e.alert.opened_at,
                down_since: downs.get(&e.alert.id).copied(),
            }),
            AlertChange::Resolved => Some(OutboxEntry {
                alert_id: e.alert.id,
                change: "resolved",
                at: e.alert.resolved_at.unwrap_or(e.alert.opened_at),
                down_since: None,
            }),
            AlertChange::Updated => None,
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    sql.write_outbox(&rows).await
}

async fn add_scopes<S: Sql>(sql: &mut S, events: &mut [AlertEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let names: HashSet<&str> = events.iter().map(|e| e.alert.device.as_str()).collect();
    let names: Vec<&str> = names.into_iter().collect();
    let scopes: HashMap<String, _> = sql.scopes(&names).await?.into_iter().collect();
    for e in events {
        e.scope = scopes.get(&e.alert.device).cloned();
    }
    Ok(())
}

fn updated_event(alert: AlertRow) -> AlertEvent {
    AlertEvent {
        change: AlertChange::Updated,
        alert,
        scope: None,
    }
}

fn resolved_event(alert: AlertRow) -> AlertEvent {
    AlertEvent {
        change: AlertChange::Resolved,
        alert,
        scope: None,
    }
}

fn window(rules: &AlertRules) -> chrono::Duration {
    chrono::Duration::from_std(rules.flapping_window).unwrap_or_default()
}
