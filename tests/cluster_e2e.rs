//! The cluster acceptance tests (issue #18): several real members, failures made by the
//! test (kill -9, SIGTERM, a member cut from or stalled on the database, every member's
//! database connection reset at once, PostgreSQL restarted (a server of the test's own),
//! Redis killed, members joining and leaving), and
//! after each the oracle's checks (`cluster::Cluster::verify`): transitions one to one
//! with what nftables decided, one alert per outage, no stale-epoch write accepted, each
//! transition once on every SSE client; and each notification sent by exactly one member. Bounds: a device is probed again within
//! 2 × interval + lease TTL after its owner's kill -9, and interval + 2 s after its
//! SIGTERM. Each test has its own database, Redis, addresses (127.93.N.0/24) and
//! nftables tables.

mod cluster;
mod pgdb;
mod support;
mod webhook_sink;

use std::time::Duration;

use cluster::{Cluster, INTERVAL, LEASE_TTL, metric, now, pause};

const DEVICES: usize = 30;

/// Devices `of` holds (at least `n` of them), the first `n`.
fn some_of(c: &Cluster, member: &str, n: usize) -> Vec<usize> {
    let mine = c.devices_of_member(member);
    assert!(
        mine.len() >= n,
        "{member} holds {} devices: {mine:?}",
        mine.len()
    );
    mine[..n].to_vec()
}

#[test]
fn kill_9_sigterm_join_and_leave_hand_over_in_time_and_keep_each_outage() {
    let mut c = Cluster::new("clkill", 1, DEVICES);
    c.start_settled(&["a", "b", "c"]);

    for (round, victim) in ["a", "b"].into_iter().enumerate() {
        // An outage in progress on the victim's devices, one elsewhere.
        let down = some_of(&c, victim, 2);
        let other = c
            .running()
            .into_iter()
            .find(|m| *m != victim)
            .unwrap()
            .to_string();
        let elsewhere = some_of(&c, &other, 1);
        c.fail(&down);
        c.fail(&elsewhere);
        c.settle();
        let before: Vec<_> = down.iter().map(|&i| c.status_on(&other, i)).collect();
        let held = c.devices_of_member(victim);

        let killed = now();
        c.kill9(victim);
        let gap = c.probed_again_after(&held, killed);
        let bound = INTERVAL * 2 + LEASE_TTL;
        assert!(
            gap <= bound,
            "round {round}: probed again {gap:?} after the kill -9 (bound {bound:?})"
        );
        eprintln!("kill -9 of {victim}: every device probed again within {gap:?}");
        // The outage goes on under the new owner, with its start.
        c.settle();
        let after: Vec<_> = down.iter().map(|&i| c.status_on(&other, i)).collect();
        assert_eq!(
            after, before,
            "round {round}: the outage keeps its down_since"
        );
        // Recovered under the new owner: resolved once.
        c.recover(&down);
        c.recover(&elsewhere);
        c.settle();
        c.start(victim);
        c.balanced();
        c.settle();
    }

    for (round, leaving) in ["c", "a"].into_iter().enumerate() {
        let held = c.devices_of_member(leaving);
        let stopped = now();
        c.stop(leaving);
        let gap = c.probed_again_after(&held, stopped);
        let bound = INTERVAL + Duration::from_secs(2);
        assert!(
            gap <= bound,
            "round {round}: probed again {gap:?} after the SIGTERM (bound {bound:?})"
        );
        eprintln!("SIGTERM of {leaving}: every device probed again within {gap:?}");
        let failing = some_of(&c, c.running()[0], 1);
        c.fail(&failing);
        c.settle();
        c.recover(&failing);
        c.settle();
        c.start(leaving);
        c.balanced();
    }

    // A fourth member takes about a quarter of the shards, and nothing else moves.
    let before = c.owners();
    c.start("d");
    c.balanced();
    let after = c.owners();
    let moved = before
        .iter()
        .filter(|(s, o)| after.get(s) != Some(o))
        .count();
    let to_d = after.values().filter(|o| *o == "d").count();
    assert_eq!(moved, to_d, "only shards for the new member moved");
    assert!(
        (180..=340).contains(&moved),
        "{moved} shards moved to the fourth member"
    );
    eprintln!("a fourth member took {moved} of 1024 shards");
    let on_d = some_of(&c, "d", 1);
    c.fail(&on_d);
    c.settle();
    c.recover(&on_d);
    c.settle();
    // And one leaves again.
    c.stop("b");
    c.balanced();
    c.settle();
    c.verify();
}

#[test]
fn a_member_cut_from_the_database_stops_before_its_leases_can_be_taken() {
    let mut c = Cluster::new("clcut", 2, DEVICES);
    c.start_settled(&["a", "b", "c"]);

    let rounds = [("cut", "b"), ("stall", "c"), ("cut", "c"), ("stall", "b")];
    for (how, victim) in rounds {
        let held = c.devices_of_member(victim);
        let failing = held[..2].to_vec();
        let cut_at = std::time::Instant::now();
        let node = &c.nodes[victim];
        if how == "cut" {
            node.proxy.cut();
        } else {
            node.proxy.stall();
        }
        // It stops acting on its own, before a lease of its could expire.
        let app = c.app(victim);
        support::wait_for(LEASE_TTL * 2, "the member to fence itself", || {
            (metric(app, "wardops_cluster_shards_owned") == Some(0.0)).then_some(())
        });
        let fenced_after = cut_at.elapsed();
        assert!(
            fenced_after < LEASE_TTL,
            "{how}: fenced after {fenced_after:?}"
        );
        // Its devices fail meanwhile: the others take them over and see it.
        c.fail(&failing);
        let others: Vec<&str> = c.running().into_iter().filter(|m| *m != victim).collect();
        c.settle_on(&others, Duration::from_secs(30));
        // Past the prober's stall limit (2 cycles + 5 s) it still serves, the others'
        // word, and says why it probes nothing: degraded, not unready.
        pause(Duration::from_secs(12).saturating_sub(cut_at.elapsed()));
        let ready = reqwest::blocking::get(c.app(victim).url("/readyz")).unwrap();
        assert_eq!(ready.status(), 200, "{how}");
        let ready = ready.text().unwrap();
        assert!(ready.contains("acting on no shard"), "{how}: {ready}");
        let cut_off = victim.to_string();
        c.nodes[&cut_off].proxy.restore();
        if how == "stall" {
            // Stalled connections stay stuck until the member gives them up.
            pause(LEASE_TTL);
        }
        c.balanced();
        c.settle();
        c.recover(&failing);
        c.settle();
    }

    // Every member's database connection reset at once, for longer than a lease: all of
    // them stop, then take the shards again with new epochs; what failed meanwhile is
    // seen after.
    for node in c.nodes.values() {
        node.proxy.cut();
    }
    let failing = vec![0, 1, 2];
    fail_while_every_member_is_fenced(&mut c, &failing);
    for node in c.nodes.values() {
        node.proxy.restore();
    }
    c.balanced();
    c.settle();
    c.recover(&failing);
    c.settle();
    c.verify();
}

/// With the database away, devices `failing` fail; two TTLs later every member acts on
/// nothing.
fn fail_while_every_member_is_fenced(c: &mut Cluster, failing: &[usize]) {
    c.fail(failing);
    pause(LEASE_TTL * 2);
    for id in c.running() {
        assert_eq!(
            metric(c.app(id), "wardops_cluster_shards_owned"),
            Some(0.0),
            "{id} stopped acting"
        );
    }
}

#[test]
fn postgresql_restarted_the_members_stop_then_take_their_shards_again() {
    let pg = pgdb::own::OwnPostgres::start();
    let mut c = Cluster::on_server(pg.port, "clpgrestart", 5, DEVICES, "", &[]);
    c.start_settled(&["a", "b", "c"]);
    let before = c.owners();

    // Down for two TTLs: every member fences itself, every lease expires; devices fail
    // meanwhile, seen once the server is back.
    pg.down();
    let failing = vec![0, 1, 2];
    fail_while_every_member_is_fenced(&mut c, &failing);
    pg.up();
    c.balanced();
    c.settle();
    // Every shard was taken again at a new epoch, by the same member (the same map).
    assert_eq!(c.owners(), before);
    let epochs =
        c.db.query("SELECT count(*) FROM shard_leases WHERE epoch < 2");
    assert_eq!(epochs.trim(), "0", "every lease taken anew");
    c.recover(&failing);
    c.settle();
    c.verify();
}

#[test]
fn without_redis_members_read_each_other_from_postgresql_and_say_so() {
    let mut c = Cluster::new("clredis", 3, DEVICES);
    c.start_settled(&["a", "b"]);
    let feed = |c: &Cluster, id: &str| {
        let body = c.app(id).try_get("/api/v1/cluster")?;
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        json["this_member"]["feed"].as_str().map(str::to_string)
    };
    for id in ["a", "b"] {
        assert_eq!(feed(&c, id).as_deref(), Some("live"));
    }

    // Twice: a reader that came back once must fall back again.
    for _ in 0..2 {
        c.redis.kill();
        for id in ["a", "b"] {
            support::wait_for(Duration::from_secs(10), "the feed in fallback", || {
                (feed(&c, id).as_deref() == Some("fallback")).then_some(())
            });
            assert_eq!(metric(c.app(id), "wardops_cluster_feed_live"), Some(0.0));
        }
        // Changes on either member still show on both, read from PostgreSQL.
        let on_a = some_of(&c, "a", 2);
        let on_b = some_of(&c, "b", 2);
        c.fail(&on_a);
        c.fail(&on_b);
        c.settle();

        c.redis.restart();
        for id in ["a", "b"] {
            support::wait_for(Duration::from_secs(15), "the feed live again", || {
                (feed(&c, id).as_deref() == Some("live")).then_some(())
            });
        }
        c.recover(&on_a);
        c.recover(&on_b);
        c.settle();
    }
    // Live again: the next changes come over the stream.
    let applied = metric(c.app("a"), "wardops_cluster_events_applied_total").unwrap();
    let more = some_of(&c, "b", 1);
    c.fail(&more);
    c.settle();
    assert!(metric(c.app("a"), "wardops_cluster_events_applied_total").unwrap() > applied);
    c.recover(&more);
    c.settle();
    c.verify();
}

/// (device, state) of every notice the sink was sent, sorted, and how many requests.
fn notices(sink: &webhook_sink::Sink) -> (Vec<(String, String)>, usize) {
    let delivered = sink.delivered();
    let mut out: Vec<(String, String)> = delivered
        .iter()
        .flat_map(|r| {
            let m = r.json();
            m["notices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| {
                    let field = |k: &str| n[k].as_str().unwrap().to_string();
                    (field("device"), field("state"))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    (out, delivered.len())
}

#[test]
fn exactly_one_member_sends_each_notification_and_another_takes_over() {
    let sink = webhook_sink::Sink::start();
    let notifications = format!(
        "alerts:\n  flapping_transitions: 1000\nnotifications:\n  receivers:\n    - name: hook\n      \
         webhook:\n        url: {}\n        secret_file: hook.secret\n        timeout: 2s\n  \
         routes:\n    - receivers: [hook]\n      group_wait: 0s\n      group_by: [device]\n",
        sink.url()
    );
    let files = [("hook.secret", "a secret of the test\n")];
    let mut c = Cluster::on_server(pgdb::PORT, "clnotify", 4, DEVICES, &notifications, &files);
    c.start_settled(&["a", "b", "c"]);
    let expect = |c: &Cluster, want: &[(usize, &str)]| {
        let mut want: Vec<(String, String)> = want
            .iter()
            .map(|(i, s)| (c.devices[*i].0.clone(), s.to_string()))
            .collect();
        want.sort();
        support::wait_for(Duration::from_secs(20), "the notices", || {
            (notices(&sink).0 == want).then_some(())
        });
        // And no second copy comes from another member.
        pause(Duration::from_secs(3));
        let (got, requests) = notices(&sink);
        assert_eq!(got, want);
        assert_eq!(
            requests,
            want.len(),
            "one message per notice (group_by device)"
        );
    };
    // Devices of two members go down: one message each, whoever owns them.
    let (x, y) = (some_of(&c, "a", 1)[0], some_of(&c, "b", 1)[0]);
    c.fail(&[x, y]);
    c.settle();
    expect(&c, &[(x, "firing"), (y, "firing")]);

    // The sender is killed: another member holds shard 0 and sends from then on.
    let sender = c.owners()[&0].clone();
    c.kill9(&sender);
    c.balanced();
    c.recover(&[x, y]);
    c.settle();
    expect(
        &c,
        &[
            (x, "firing"),
            (x, "resolved"),
            (y, "firing"),
            (y, "resolved"),
        ],
    );
    assert_ne!(c.owners()[&0], sender);
    c.verify();
}
