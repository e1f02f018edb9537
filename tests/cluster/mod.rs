//! The harness of the cluster acceptance tests (issue #18, docs/cluster.md), in the manner
//! of Alertmanager's: real `wardops serve` members on loopback sharing the real PostgreSQL
//! (a database of the test's own) and a redis-server of the test's own, each member's
//! database connection through a TCP proxy of its own (cut, stall, restore).
//!
//! nftables is the oracle: the test decides which devices fail ([`Cluster::fail`],
//! [`Cluster::recover`]), waits until every member shows the truth ([`Cluster::settle`]),
//! and at the end [`Cluster::verify`] checks what was written against what it decided:
//! each device's stored transitions are the oracle's changes one to one (no duplicate, none
//! missing), one alert per outage, no write accepted from a lease's older epoch, and every
//! SSE client saw each transition once.
#![allow(dead_code)] // each test uses a different part

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::Value;

use crate::pgdb::{TestDb, proxy::Proxy};
use crate::support::redis::OwnRedis;
use crate::support::{Appliance, Blackhole, free_port, wait_for};

/// Probe interval of every device: the failover bounds are counted in it.
pub const INTERVAL: Duration = Duration::from_secs(2);
pub const LEASE_TTL: Duration = Duration::from_secs(3);

fn settings(extra: &str) -> String {
    extra.to_string()
        + &format!(
            "probe:\n  interval: {}s\n  timeout: 300ms\n  packets: 1\n  down_after: 2\n  \
         up_after: 1\n  retry_interval: 300ms\ncluster:\n  lease_ttl: {}s\n",
            INTERVAL.as_secs(),
            LEASE_TTL.as_secs()
        )
}

/// One member: its directory (settings, inventory, spool) and proxy outlive restarts.
pub struct Node {
    pub dir: PathBuf,
    pub proxy: Proxy,
    pub app: Option<Appliance>,
    pub sse: Vec<Sse>,
}

/// What the oracle decided for one device, in order.
#[derive(Debug, Default, Clone)]
struct Truth {
    /// Statuses after each change, starting with the first `up`.
    statuses: Vec<&'static str>,
}

pub struct Cluster {
    pub db: TestDb,
    pub redis: OwnRedis,
    _root: tempfile::TempDir,
    root: PathBuf,
    pub nodes: BTreeMap<String, Node>,
    /// (name, address), in inventory order.
    pub devices: Vec<(String, String)>,
    truth: Vec<Truth>,
    holes: HashMap<usize, Blackhole>,
    tag: String,
    /// More settings, and files beside them, for every member.
    extra: String,
    files: Vec<(String, String)>,
    /// The PostgreSQL server's port (the members reach it through their proxies).
    pg_port: u16,
}

impl Cluster {
    /// A cluster of no member yet over `n` devices on 127.93.`net`.1…n.
    pub fn new(tag: &str, net: u8, n: usize) -> Cluster {
        Cluster::on_server(crate::pgdb::PORT, tag, net, n, "", &[])
    }

    /// [`Cluster::new`] on the PostgreSQL server at 127.0.0.1:`port` (the local one, or
    /// one of the test's own to restart it), with `extra` settings and `files` (name,
    /// text) in each member's directory.
    pub fn on_server(
        port: u16,
        tag: &str,
        net: u8,
        n: usize,
        extra: &str,
        files: &[(&str, &str)],
    ) -> Cluster {
        let root = tempfile::tempdir().unwrap();
        let devices: Vec<(String, String)> = (1..=n)
            .map(|i| (format!("{tag}-d{i:02}"), format!("127.93.{net}.{i}")))
            .collect();
        Cluster {
            db: TestDb::create_on(port, tag),
            redis: OwnRedis::start(),
            root: root.path().to_path_buf(),
            _root: root,
            nodes: BTreeMap::new(),
            truth: vec![
                Truth {
                    statuses: vec!["up"]
                };
                n
            ],
            devices,
            holes: HashMap::new(),
            tag: tag.into(),
            extra: extra.into(),
            files: files
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect(),
            pg_port: port,
        }
    }

    /// Starts member `id` (again, after a kill or a stop: same directory and proxy), and
    /// an SSE client on it.
    pub fn start(&mut self, id: &str) {
        if !self.nodes.contains_key(id) {
            let dir = self.root.join(id);
            std::fs::create_dir_all(dir.join("inventory")).unwrap();
            std::fs::write(dir.join("wardops.yaml"), settings(&self.extra)).unwrap();
            for (name, text) in &self.files {
                std::fs::write(dir.join(name), text).unwrap();
            }
            let mut inventory = String::from(
                "regions:\n  - name: cl\n    branches:\n      - name: cl1\n        devices:\n",
            );
            for (name, address) in &self.devices {
                inventory.push_str(&format!(
                    "          - {{ name: {name}, address: {address}, kind: atm }}\n"
                ));
            }
            std::fs::write(dir.join("inventory/cl.yaml"), inventory).unwrap();
            let node = Node {
                dir,
                proxy: Proxy::start_to(self.pg_port),
                app: None,
                sse: Vec::new(),
            };
            self.nodes.insert(id.into(), node);
        }
        let redis = self.redis.url();
        let node = self.nodes.get_mut(id).unwrap();
        let db = self.db.url_via(node.proxy.addr);
        let env = [
            ("WARDOPS_DATABASE_URL", db.as_str()),
            ("WARDOPS_CLUSTER_MEMBER_ID", id),
            ("WARDOPS_REDIS_URL", redis.as_str()),
        ];
        let app = Appliance::start_on(&node.dir, free_port(), &env);
        node.sse.push(Sse::follow(&app.url("/api/v1/events")));
        node.app = Some(app);
    }

    /// Starts `ids` and waits until the shards are spread over them and every device
    /// shows the oracle's status on each.
    pub fn start_settled(&mut self, ids: &[&str]) {
        for id in ids {
            self.start(id);
        }
        self.balanced();
        self.settle();
    }

    pub fn app(&self, id: &str) -> &Appliance {
        self.nodes[id].app.as_ref().expect("a running member")
    }

    /// The members running now.
    pub fn running(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.app.is_some())
            .map(|(id, _)| id.as_str())
            .collect()
    }

    pub fn kill9(&mut self, id: &str) {
        let node = self.nodes.get_mut(id).unwrap();
        node.app.take().expect("running").kill9();
    }

    /// SIGTERM, waiting for the exit.
    pub fn stop(&mut self, id: &str) {
        let node = self.nodes.get_mut(id).unwrap();
        drop(node.app.take().expect("running"));
    }

    /// Devices `indices` stop answering (nftables drops their echo requests).
    pub fn fail(&mut self, indices: &[usize]) {
        for &i in indices {
            assert!(
                !self.holes.contains_key(&i),
                "device {i} is failing already"
            );
            let tag = format!("{}_{i}", self.tag);
            let hole = Blackhole::new(&tag, &[self.devices[i].1.as_str()]);
            self.holes.insert(i, hole);
            self.truth[i].statuses.push("down");
        }
    }

    pub fn recover(&mut self, indices: &[usize]) {
        for &i in indices {
            self.holes.remove(&i).expect("a failing device");
            self.truth[i].statuses.push("up");
        }
    }

    fn expected(&self, i: usize) -> &'static str {
        self.truth[i].statuses.last().unwrap()
    }

    /// Waits until every device shows the oracle's status on each of `members`.
    #[track_caller]
    pub fn settle_on(&self, members: &[&str], within: Duration) {
        for id in members {
            let app = self.app(id);
            let deadline = Instant::now() + within;
            loop {
                let list = devices_of(app).unwrap_or_default();
                let wrong: Vec<String> = self
                    .devices
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (name, _))| {
                        let shown = list.get(name).map(|d| d.status.as_str());
                        (shown != Some(self.expected(i)))
                            .then(|| format!("{name} {shown:?} not {}", self.expected(i)))
                    })
                    .collect();
                if wrong.is_empty() {
                    break;
                }
                if Instant::now() > deadline {
                    let mut logs = String::new();
                    for (other, node) in &self.nodes {
                        let Some(app) = &node.app else { continue };
                        let log = app.log();
                        let lines: Vec<&str> = log
                            .lines()
                            .filter(|l| {
                                l.contains("WARN") || l.contains("ERROR") || l.contains("cluster")
                            })
                            .filter(|l| !l.contains("rows wait") && !l.contains("round failed"))
                            .collect();
                        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
                        logs.push_str(&format!("--- {other}'s log:\n{tail}\n"));
                    }
                    panic!("{id} after {within:?} shows {wrong:?}\n{logs}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// [`Cluster::settle_on`] every running member.
    #[track_caller]
    pub fn settle(&self) {
        self.settle_on(&self.running(), Duration::from_secs(30));
    }

    /// Indices of the devices whose shard `member` holds, from the lease table.
    pub fn devices_of_member(&self, member: &str) -> Vec<usize> {
        let owners = self.owners();
        (0..self.devices.len())
            .filter(|&i| {
                let shard = wardops::cluster::shard_of(&self.devices[i].0);
                owners.get(&shard).map(String::as_str) == Some(member)
            })
            .collect()
    }

    /// Shard → owner, of the leases held now.
    pub fn owners(&self) -> HashMap<u16, String> {
        self.db
            .query("SELECT shard, owner FROM shard_leases WHERE owner IS NOT NULL AND expires_at > now()")
            .lines()
            .filter_map(|l| {
                let (shard, owner) = l.split_once('|')?;
                Some((shard.parse().ok()?, owner.to_string()))
            })
            .collect()
    }

    /// Waits until each running member acts on its share and the leases say the same:
    /// every shard held, by a running member.
    pub fn balanced(&self) {
        let running = self.running();
        wait_for(
            Duration::from_secs(30),
            "the shards spread over the members",
            || {
                let owners = self.owners();
                let spread = owners.len() == 1024
                    && owners.values().all(|o| running.contains(&o.as_str()))
                    && running.iter().all(|id| owners.values().any(|o| o == id));
                spread.then_some(())
            },
        );
    }

    /// After `at`, the largest wait until each of `indices` was probed again, by any
    /// running member (read from the probes' own start times, so the polling's pace does
    /// not count). Waits until all were.
    pub fn probed_again_after(&self, indices: &[usize], at: DateTime<Utc>) -> Duration {
        let mut first: HashMap<usize, DateTime<Utc>> = HashMap::new();
        wait_for(Duration::from_secs(30), "every device probed again", || {
            for id in self.running() {
                let Some(list) = devices_of(self.app(id)) else {
                    continue;
                };
                for &i in indices {
                    let probed = list.get(&self.devices[i].0).and_then(|d| d.last_probe_at);
                    if let Some(p) = probed.filter(|&p| p > at) {
                        first.entry(i).and_modify(|f| *f = (*f).min(p)).or_insert(p);
                    }
                }
            }
            (first.len() == indices.len()).then_some(())
        });
        first
            .values()
            .map(|p| (*p - at).to_std().unwrap_or_default())
            .max()
            .unwrap_or_default()
    }

    /// `(status, down_since)` of device `i` on `member`.
    pub fn status_on(&self, member: &str, i: usize) -> Option<(String, Option<String>)> {
        crate::support::api_status(self.app(member), &self.devices[i].0)
    }

    /// Checks what was written against the oracle; see the module's documentation.
    pub fn verify(&mut self) {
        // Everything decided is committed: no member has records pending.
        for id in self.running() {
            let app = self.app(id);
            wait_for(Duration::from_secs(20), "the writers to drain", || {
                let m = app.try_get("/metrics")?;
                m.lines()
                    .any(|l| l == "wardops_store_pending_writes 0")
                    .then_some(())
            });
        }
        // 1. Transitions, one to one.
        let rows = self
            .db
            .query("SELECT device, from_status, to_status FROM transitions ORDER BY id");
        let mut stored: HashMap<&str, Vec<String>> = HashMap::new();
        for line in rows.lines() {
            let mut f = line.split('|');
            let (device, from, to) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            let list = stored.entry(device).or_default();
            if let Some(last) = list.last() {
                assert_eq!(
                    last, from,
                    "{device}: a transition from {from} after {last}"
                );
            }
            list.push(to.to_string());
        }
        for (i, (name, _)) in self.devices.iter().enumerate() {
            let want: Vec<&str> = self.truth[i].statuses.clone();
            let got: Vec<&str> = stored
                .get(name.as_str())
                .map(|v| v.iter().map(String::as_str).collect())
                .unwrap_or_default();
            assert_eq!(got, want, "{name}: stored transitions against the oracle's");
        }
        // 2. One alert per outage, open while the outage lasts.
        let alerts = self.db.query(
            "SELECT device, count(*), count(*) FILTER (WHERE resolved_at IS NULL) \
             FROM alerts WHERE condition = 'device_down' GROUP BY device",
        );
        let alerts: HashMap<&str, (usize, usize)> = alerts
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('|').collect();
                (f[0], (f[1].parse().unwrap(), f[2].parse().unwrap()))
            })
            .collect();
        for (i, (name, _)) in self.devices.iter().enumerate() {
            let outages = self.truth[i]
                .statuses
                .iter()
                .filter(|s| **s == "down")
                .count();
            let open = usize::from(self.expected(i) == "down");
            let got = alerts.get(name.as_str()).copied().unwrap_or((0, 0));
            assert_eq!(
                got,
                (outages, open),
                "{name}: device_down alerts (all, open)"
            );
        }
        // 3. No write of an older epoch after a newer one, for any shard; each epoch is
        //    one member's. Every stored transition went through the outbox.
        let events = self
            .db
            .query("SELECT event FROM cluster_outbox ORDER BY id");
        let mut epochs: HashMap<u16, (i64, String)> = HashMap::new();
        let mut transitions = 0;
        for line in events.lines() {
            let e: Value = serde_json::from_str(line).unwrap();
            let shard = wardops::cluster::shard_of(e["device"].as_str().unwrap());
            let (member, epoch) = (e["member"].as_str().unwrap(), e["epoch"].as_i64().unwrap());
            transitions += usize::from(e["type"] == "transition");
            if let Some((last, by)) = epochs.get(&shard) {
                assert!(
                    epoch > *last || (epoch == *last && by == member),
                    "shard {shard}: {member} wrote at epoch {epoch} after {by} at {last}"
                );
            }
            epochs.insert(shard, (epoch, member.to_string()));
        }
        assert_eq!(
            transitions,
            rows.lines().count(),
            "transitions against outbox events"
        );
        // 4. Every SSE client saw each transition of its time once.
        let times = self.db.query(
            "SELECT device, to_status, floor(extract(epoch FROM at) * 1000)::bigint \
             FROM transitions ORDER BY id",
        );
        let stored: Vec<(String, String, i64)> = times
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('|').collect();
                (f[0].to_string(), f[1].to_string(), f[2].parse().unwrap())
            })
            .collect();
        for (id, node) in &self.nodes {
            for sse in &node.sse {
                sse.saw_each_once(id, &stored);
            }
        }
    }
}

/// A device as a member's list shows it.
pub struct Shown {
    pub status: String,
    pub down_since: Option<String>,
    pub last_probe_at: Option<DateTime<Utc>>,
}

/// Every device `app` lists, by name.
pub fn devices_of(app: &Appliance) -> Option<HashMap<String, Shown>> {
    let body = app.try_get("/api/v1/devices")?;
    let json: Value = serde_json::from_str(&body).ok()?;
    let time = |v: &Value| v.as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok());
    Some(
        json["devices"]
            .as_array()?
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap_or_default().to_string(),
                    Shown {
                        status: d["ping_status"].as_str().unwrap_or_default().to_string(),
                        down_since: d["down_since"].as_str().map(str::to_string),
                        last_probe_at: time(&d["last_probe_at"]),
                    },
                )
            })
            .collect(),
    )
}

/// A member's gauge or counter in `/metrics`.
pub fn metric(app: &Appliance, name: &str) -> Option<f64> {
    let m = app.try_get("/metrics")?;
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// An SSE client on one member, from its start until the member goes away.
pub struct Sse {
    /// (device, status, at in Unix milliseconds, as the feed writes it) of each
    /// `transition` event, in order.
    seen: Arc<Mutex<Vec<(String, String, i64)>>>,
    /// When it connected and, once the stream ended, when that was (Unix ms).
    started: i64,
    ended: Arc<Mutex<Option<i64>>>,
}

fn unix_now() -> i64 {
    Utc::now().timestamp_millis()
}

impl Sse {
    pub fn follow(url: &str) -> Sse {
        let seen: Arc<Mutex<Vec<(String, String, i64)>>> = Arc::default();
        let ended: Arc<Mutex<Option<i64>>> = Arc::default();
        let client = reqwest::blocking::Client::builder()
            .timeout(None)
            .build()
            .unwrap();
        let response = client.get(url).send().expect("the event stream");
        assert!(response.status().is_success());
        let started = unix_now();
        let (s, e) = (seen.clone(), ended.clone());
        std::thread::spawn(move || {
            let mut event = String::new();
            for line in std::io::BufReader::new(response).lines() {
                let Ok(line) = line else { break };
                if let Some(name) = line.strip_prefix("event: ") {
                    event = name.to_string();
                } else if let Some(data) = line.strip_prefix("data: ")
                    && event == "transition"
                {
                    let d: Value = serde_json::from_str(data).unwrap();
                    let at: DateTime<Utc> = d["at"].as_str().unwrap().parse().unwrap();
                    s.lock().push((
                        d["device"].as_str().unwrap().to_string(),
                        d["status"].as_str().unwrap().to_string(),
                        at.timestamp_millis(),
                    ));
                }
            }
            *e.lock() = Some(unix_now());
        });
        Sse {
            seen,
            started,
            ended,
        }
    }

    /// Each stored transition decided well inside this client's time was seen exactly
    /// once, and nothing it saw is a repeat.
    fn saw_each_once(&self, member: &str, stored: &[(String, String, i64)]) {
        // Margins: a transition decided just before the connection or just before the
        // member went away may or may not have reached it.
        let from = self.started + 1_000;
        let to = self.ended.lock().map_or(i64::MAX, |t| t - 3_000);
        let seen = self.seen.lock().clone();
        let mut counts: HashMap<(&str, &str, i64), usize> = HashMap::new();
        for (device, status, at) in &seen {
            *counts.entry((device, status, *at)).or_default() += 1;
        }
        for ((device, status, at), n) in &counts {
            assert_eq!(
                *n, 1,
                "{member}'s SSE client saw {device} {status} at {at} {n} times"
            );
        }
        for (device, status, at) in stored.iter().filter(|t| t.2 > from && t.2 < to) {
            let key = (device.as_str(), status.as_str(), *at);
            assert_eq!(
                counts.get(&key).copied().unwrap_or(0),
                1,
                "{member}'s SSE client (from {from} to {to}) and {device} {status} at {at}: {seen:?}"
            );
        }
    }
}

/// Waits `d`, saying why.
pub fn pause(d: Duration) {
    std::thread::sleep(d);
}

pub fn now() -> DateTime<Utc> {
    Utc::now()
}
