//! Access benchmarks: `cargo bench --bench access`.
//!
//! Over real HTTP on 127.0.0.1, an in-process server of 10,000 devices behind a gate
//! with a users file (bcrypt cost 12, as `wardops hash-password` makes it):
//! 1. `GET /api/v1/devices?limit=100` and the whole list, anonymous and with an API
//!    token, interleaved request by request on one keep-alive connection each, so both
//!    see the same machine; and with basic auth (its password remembered after the
//!    first check). Median and p99 of 300 each, and the ratio of the medians.
//! 2. `POST /login`: p50/p99 of 40 one after another, then 16 at once, each a user of
//!    its own (a password that checked out is remembered: the figure is the check) (bcrypt runs two
//!    at a time: the rest wait their turn).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use wardops::access::gate::Gate;
use wardops::access::users::Users;
use wardops::config::load::{Source, build_inventory};
use wardops::config::settings::AccessSettings;
use wardops::context::{Context, StoreHandle};
use wardops::probe::ProbeOutcome;
use wardops::reload::Reloader;
use wardops::state::{State, SystemClock};
use wardops::store::startup::{StartOptions, start};

mod support;
use support::{inventory, percentile};

const DEVICES: usize = 10_000;
const TOKEN: &str = "wdo_bench-token-0123456789abcdefghijklmnopqrstuv";

fn stats(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

async fn timed(req: reqwest::RequestBuilder) -> f64 {
    let t = Instant::now();
    let r = req.send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.bytes().await.unwrap();
    t.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let source = Source {
            path: PathBuf::from("inventory/bench.yaml"),
            text: inventory(DEVICES),
        };
        let inv = build_inventory(&[source], &Default::default()).expect("valid inventory");
        let state = State::new(Arc::new(SystemClock));
        let dir = tempfile::tempdir().unwrap();
        let store = start(StartOptions::local(dir.path()), Arc::new(SystemClock))
            .await
            .unwrap();
        // A user per login measured: a password that checked out is remembered, and
        // the login figure is of the check itself.
        const LOGINS: usize = 40;
        const AT_ONCE: usize = 16;
        let hashes: Vec<String> = (0..=LOGINS + AT_ONCE)
            .map(|_| bcrypt::hash("secret", 12).unwrap())
            .collect();
        let hash = &hashes[0];
        let mut login_users = String::new();
        for (i, h) in hashes[1..].iter().enumerate() {
            login_users.push_str(&format!("  u{i}: {h}\n"));
        }
        let digest = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()))
        };
        let users = Users::parse(
            Path::new("users.yml"),
            &format!(
                "basic_auth_users:\n  ada: {hash}\n{login_users}users:\n  ada: {{ role: admin }}\napi_tokens:\n  bench: {{ sha256: {digest} }}\n"
            ),
        )
        .unwrap();
        // Generous login limits: the bench logs in a hundred times on purpose.
        let settings = AccessSettings {
            login_failures_per_user: 1000,
            login_failures_per_address: 1000,
            ..AccessSettings::defaults(true)
        };
        let gate = Arc::new(Gate::new(&settings, users));
        let reloader = Reloader::idle(dir.path().into(), state.snapshot().inventory.clone());
        let mut ctx = Context::new(state.clone(), StoreHandle::of(&store), reloader);
        ctx.gate = gate.clone();
        let ctx = ctx.start(Default::default());
        state.replace_inventory(Arc::new(inv), |_| None);
        let snapshot = state.snapshot();
        for (i, (d, _, rt)) in snapshot.devices().enumerate() {
            let ok = i % 100 != 7;
            let outcome = ProbeOutcome {
                sent: 1,
                received: u32::from(ok),
                rtt: ok.then_some(Duration::from_micros(500)),
            };
            state.record_probe(d, rt, &outcome, Utc::now());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(wardops::http::serve_with(
            listener,
            wardops::app::routes(&ctx),
            gate,
            Default::default(),
            None,
            std::future::pending(),
        ));
        let client = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
        };
        let (anon, token, basic) = (client(), client(), client());
        println!("devices: {DEVICES}");
        for path in ["/api/v1/devices?limit=100", "/api/v1/devices"] {
            let url = format!("{base}{path}");
            // Warm: the order cached, the password checked once.
            for _ in 0..5 {
                timed(anon.get(&url)).await;
                timed(token.get(&url).bearer_auth(TOKEN)).await;
                timed(basic.get(&url).basic_auth("ada", Some("secret"))).await;
            }
            let (mut a, mut t, mut b) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..300 {
                a.push(timed(anon.get(&url)).await);
                t.push(timed(token.get(&url).bearer_auth(TOKEN)).await);
                b.push(timed(basic.get(&url).basic_auth("ada", Some("secret"))).await);
            }
            let (a, t, b) = (stats(a), stats(t), stats(b));
            println!(
                "GET {path:28} anonymous median {:6.2} ms p99 {:6.2} | token median {:6.2} ms p99 {:6.2} ({:+.1} %) | basic median {:6.2} ms p99 {:6.2} ({:+.1} %)",
                a.0,
                a.1,
                t.0,
                t.1,
                (t.0 / a.0 - 1.0) * 100.0,
                b.0,
                b.1,
                (b.0 / a.0 - 1.0) * 100.0
            );
        }
        let login = |c: &reqwest::Client, user: usize| {
            c.post(format!("{base}/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("user=u{user}&password=secret&next=%2F"))
        };
        let c = client();
        let mut one = Vec::new();
        for user in 0..LOGINS {
            let t = Instant::now();
            let r = login(&c, user).send().await.unwrap();
            assert_eq!(r.status(), 303);
            one.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let (p50, p99) = stats(one);
        println!("POST /login, one at a time ({LOGINS} users, bcrypt cost 12): median {p50:.0} ms  p99 {p99:.0} ms");
        let mut many = Vec::new();
        let started = Instant::now();
        let tasks: Vec<_> = (LOGINS..LOGINS + AT_ONCE)
            .map(|user| {
                let c = client();
                let req = login(&c, user);
                tokio::spawn(async move {
                    let t = Instant::now();
                    let r = req.send().await.unwrap();
                    assert_eq!(r.status(), 303);
                    t.elapsed().as_secs_f64() * 1000.0
                })
            })
            .collect();
        for t in tasks {
            many.push(t.await.unwrap());
        }
        let (p50, p99) = stats(many);
        println!(
            "POST /login, {AT_ONCE} users at once: median {p50:.0} ms  p99 {p99:.0} ms  (all done in {:.0} ms)",
            started.elapsed().as_secs_f64() * 1000.0
        );
    });
}
