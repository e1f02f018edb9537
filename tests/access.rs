//! Access end to end, over the real binary with a real users file: who may call which
//! route (a table over every route × anonymous, viewer, operator, admin, a token), the
//! page login with its cookie, CSRF and same-origin checks, the login rate limit, the
//! users file re-read while running, and VictoriaMetrics scraping `/metrics` with a
//! bearer token.

mod support;

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use support::{Appliance, wait_for};

/// `wardops hash-password --cost 4` of "secret" (cost 4: the tests check many).
const SECRET: &str = "$2b$04$/O/YdYaCmG9hTP.Q59421O3FbMRHvpTtwo3jJYdCtVjpSOf9MCnea";
/// An API token and the SHA-256 of it the users file keeps.
const TOKEN: &str = "wdo_test-token-for-the-access-tests-0123456789";

fn token_digest() -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()))
}

fn users_file(operator_role: &str) -> String {
    format!(
        "basic_auth_users:\n  vera: {SECRET}\n  oscar: {SECRET}\n  ada: {SECRET}\n  nino: {SECRET}\nusers:\n  oscar: {{ role: {operator_role} }}\n  ada: {{ role: admin }}\n  nino: {{ role: operator, regions: [east] }}\napi_tokens:\n  vmscrape: {{ sha256: {}, role: viewer }}\n",
        token_digest()
    )
}

/// Two regions of one device each; anonymous access off; `POST /-/reload` on.
fn write_config(dir: &Path) {
    std::fs::write(
        dir.join("wardops.yaml"),
        format!(
            "{}reload:\n  http_endpoint: true\naccess:\n  users_file: users.yml\n  anonymous: off\n",
            support::FAST_PROBE
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("inventory")).unwrap();
    std::fs::write(
        dir.join("inventory/all.yaml"),
        "regions:\n  - name: east\n    branches:\n      - name: east1\n        devices:\n          - { name: east-router, address: 127.71.0.1, kind: router }\n  - name: west\n    branches:\n      - name: west1\n        devices:\n          - { name: west-atm, address: 127.71.0.2, kind: atm }\n",
    )
    .unwrap();
    std::fs::write(dir.join("users.yml"), users_file("operator")).unwrap();
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Who {
    Anonymous,
    Viewer,
    Operator,
    Admin,
    Token,
    Scoped,
}

fn as_who(req: RequestBuilder, who: Who) -> RequestBuilder {
    match who {
        Who::Anonymous => req,
        Who::Viewer => req.basic_auth("vera", Some("secret")),
        Who::Operator => req.basic_auth("oscar", Some("secret")),
        Who::Admin => req.basic_auth("ada", Some("secret")),
        Who::Token => req.bearer_auth(TOKEN),
        Who::Scoped => req.basic_auth("nino", Some("secret")),
    }
}

#[test]
fn every_route_answers_each_role_as_its_need_says() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let app = Appliance::start(dir.path());
    let c = client();
    use Who::*;
    // (method, path, the statuses of anonymous, viewer, operator, admin, token)
    // (method, path, the statuses of anonymous, viewer, operator, admin, token, and
    // nino: an operator of the east region only)
    let table: &[(&str, &str, [u16; 6])] = &[
        ("GET", "/api/v1/devices", [401, 200, 200, 200, 200, 200]),
        (
            "GET",
            "/api/v1/devices/east-router",
            [401, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/devices/east-router/transitions",
            [401, 200, 200, 200, 200, 200],
        ),
        // Outside nino's regions: as if it did not exist.
        (
            "GET",
            "/api/v1/devices/west-atm",
            [401, 200, 200, 200, 200, 404],
        ),
        (
            "GET",
            "/api/v1/devices/west-atm/transitions",
            [401, 200, 200, 200, 200, 404],
        ),
        ("GET", "/devices/west-atm", [401, 200, 200, 200, 200, 404]),
        // Probe now: the operator's probe runs; the admin's, right after, is the same
        // device's second within 5 s (429); nino's is outside their regions (404).
        (
            "POST",
            "/api/v1/devices/west-atm/probe",
            [401, 403, 200, 429, 403, 404],
        ),
        (
            "POST",
            "/api/v1/devices/nobody/probe",
            [401, 403, 404, 404, 403, 404],
        ),
        ("GET", "/api/v1/alerts", [401, 200, 200, 200, 200, 200]),
        // No alert 1 is open: an operator gets as far as the handler's 404.
        (
            "POST",
            "/api/v1/alerts/1/ack",
            [401, 403, 404, 404, 403, 404],
        ),
        ("GET", "/api/v1/audit", [401, 403, 403, 200, 403, 403]),
        ("GET", "/api/v1/dashboard", [401, 200, 200, 200, 200, 200]),
        ("GET", "/api/v1/status", [401, 200, 200, 200, 200, 200]),
        ("GET", "/api/v1/maintenance", [401, 200, 200, 200, 200, 200]),
        ("GET", "/api/v1/silences", [401, 200, 200, 200, 200, 200]),
        // An empty body says nothing of why: refused once the role is checked.
        ("POST", "/api/v1/silences", [401, 403, 400, 400, 403, 400]),
        (
            "POST",
            "/api/v1/silences/0/expire",
            [401, 403, 404, 404, 403, 404],
        ),
        (
            "GET",
            "/api/v1/notifications",
            [401, 200, 200, 200, 200, 403],
        ),
        // An appliance alone has no cluster to show (tests/cluster_e2e.rs has one).
        ("GET", "/api/v1/cluster", [401, 404, 404, 404, 404, 403]),
        (
            "GET",
            "/api/v1/openapi.yaml",
            [401, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/reports/availability",
            [401, 200, 200, 200, 200, 200],
        ),
        ("GET", "/api/v1/events", [401, 200, 200, 200, 200, 200]),
        ("GET", "/metrics", [401, 200, 200, 200, 200, 403]),
        ("GET", "/", [401, 200, 200, 200, 200, 200]),
        ("GET", "/monitor", [401, 200, 200, 200, 200, 200]),
        (
            "GET",
            "/devices/east-router",
            [401, 200, 200, 200, 200, 200],
        ),
        ("GET", "/alerts", [401, 200, 200, 200, 200, 200]),
        ("GET", "/infrastructure", [401, 200, 200, 200, 200, 200]),
        ("GET", "/wall", [401, 200, 200, 200, 200, 200]),
        ("GET", "/reports", [401, 200, 200, 200, 200, 200]),
        ("GET", "/healthz", [200; 6]),
        ("GET", "/readyz", [200; 6]),
        ("GET", "/login", [200; 6]),
        // OpenID Connect is not set up here (tests/access_oidc.rs has it).
        ("GET", "/login/oidc", [404; 6]),
        ("GET", "/login/oidc/callback", [404; 6]),
        ("GET", "/static/app.js", [200; 6]),
        ("GET", "/static/app.css", [200; 6]),
        ("GET", "/static/wall.js", [200; 6]),
        ("GET", "/static/filters.js", [200; 6]),
        ("POST", "/-/reload", [401, 403, 403, 200, 403, 403]),
        // An empty login form is a wrong password, whoever asks, and the sixth of the
        // same (empty) name is locked out; logout is always fine.
        ("POST", "/login", [401, 401, 401, 401, 401, 429]),
        ("POST", "/logout", [303; 6]),
    ];
    let mut wrong = Vec::new();
    for (method, path, want) in table {
        for (i, who) in [Anonymous, Viewer, Operator, Admin, Token, Scoped]
            .into_iter()
            .enumerate()
        {
            let req = match *method {
                "GET" => c.get(app.url(path)),
                _ => c.post(app.url(path)),
            };
            let response = as_who(req, who).send().unwrap();
            let got = response.status().as_u16();
            // Nothing of the west region reaches nino: not a name, not a count of it
            // (the stream is read in its own test).
            if matches!(who, Scoped) && *path != "/api/v1/events" {
                let body = response.text().unwrap_or_default();
                // A 404 may say back the name it was asked for; nothing else.
                for secret in ["west-atm", "west1", "127.71.0.2"] {
                    if body.contains(secret) && !path.contains(secret) {
                        wrong.push(format!("{method} {path} as nino shows {secret}"));
                    }
                }
            }
            if got != want[i] {
                wrong.push(format!(
                    "{method} {path} as {who:?}: {got}, want {}",
                    want[i]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The table is every route: a new one without a line here fails.
    for route in all_routes() {
        let (method, pattern) = route;
        assert!(
            table
                .iter()
                .any(|(m, p, _)| *m == method && pattern.matches(p)),
            "no line for {method} {pattern:?} in the table"
        );
    }
    // A browser asking for a page is sent to sign in, and comes back after.
    let r = c
        .get(app.url("/monitor?region=east"))
        .header("accept", "text/html")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[LOCATION],
        "/login?next=%2Fmonitor%3Fregion%3Deast"
    );
    // Wrong credentials are a 401, never the anonymous viewer.
    let r = c
        .get(app.url("/api/v1/devices"))
        .basic_auth("vera", Some("nope"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let r = c
        .get(app.url("/api/v1/devices"))
        .bearer_auth("wdo_wrong")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .get(app.url("/api/v1/devices"))
        .header("authorization", "Negotiate x")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// Every route of the appliance's table: its method and path.
fn all_routes() -> Vec<(&'static str, wardops::http::route::Path)> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let state = wardops::state::State::new(std::sync::Arc::new(wardops::state::SystemClock));
        let (ctx, _store) = support::local_context(&state, dir.path()).await;
        wardops::app::routes(&std::sync::Arc::new(ctx))
            .iter()
            .map(|r| (if r.is_post() { "POST" } else { "GET" }, r.path()))
            .collect()
    })
}

fn form(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// Signs in on the login form: the session cookie (`name=value`).
fn sign_in(c: &Client, app: &Appliance, user: &str, password: &str) -> Result<String, StatusCode> {
    let r = c
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("user", user),
            ("password", password),
            ("next", "/alerts"),
        ]))
        .send()
        .unwrap();
    if r.status() != StatusCode::SEE_OTHER {
        return Err(r.status());
    }
    assert_eq!(r.headers()[LOCATION], "/alerts");
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=86400"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    Ok(cookie.split(';').next().unwrap().to_string())
}

/// The session's CSRF token, as the login page's sign-out form carries it.
fn csrf_of(c: &Client, app: &Appliance, cookie: &str) -> String {
    let page = c
        .get(app.url("/login"))
        .header(COOKIE, cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let at = page
        .find("name=\"csrf_token\" value=\"")
        .expect("a sign-out form")
        + 25;
    page[at..at + 43].to_string()
}

#[test]
fn a_page_session_signs_in_acts_with_its_csrf_token_and_signs_out() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let app = Appliance::start(dir.path());
    let c = client();
    assert_eq!(
        sign_in(&c, &app, "ada", "wrong"),
        Err(StatusCode::UNAUTHORIZED)
    );
    let cookie = sign_in(&c, &app, "ada", "secret").unwrap();
    let page = c
        .get(app.url("/alerts"))
        .header(COOKIE, &cookie)
        .send()
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    // A write of the session needs its token; another site's page cannot send one.
    let reload = |token: Option<&str>, origin: &str| {
        let mut r = c
            .post(app.url("/-/reload"))
            .header(COOKIE, &cookie)
            .header("origin", origin);
        if let Some(t) = token {
            r = r.header("x-csrf-token", t);
        }
        r.send().unwrap()
    };
    let ours = app.base.clone();
    let r = reload(None, &ours);
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().unwrap().contains("CSRF"));
    let token = csrf_of(&c, &app, &cookie);
    assert_eq!(
        reload(Some("x".repeat(43).as_str()), &ours).status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(reload(Some(&token), &ours).status(), StatusCode::OK);
    let r = reload(Some(&token), "http://evil.example");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().unwrap().contains("cross-origin"));
    // The form field works as the header does (the pages' forms send it).
    let r = c
        .post(app.url("/logout"))
        .header(COOKIE, &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("csrf_token", token.as_str())]))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = c
        .get(app.url("/api/v1/devices"))
        .header(COOKIE, &cookie)
        .send()
        .unwrap();
    assert_eq!(
        after.status(),
        StatusCode::UNAUTHORIZED,
        "the session ended"
    );
    let audit = app.log();
    assert!(
        audit.contains("signed in") && audit.contains("signed out"),
        "{audit}"
    );
    assert!(
        audit.contains("failed"),
        "the failed login is audited: {audit}"
    );
}

#[test]
fn logins_are_rate_limited_per_user_whatever_the_password() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let app = Appliance::start(dir.path());
    let c = client();
    for _ in 0..5 {
        assert_eq!(
            sign_in(&c, &app, "vera", "guess"),
            Err(StatusCode::UNAUTHORIZED)
        );
    }
    assert_eq!(
        sign_in(&c, &app, "vera", "secret"),
        Err(StatusCode::TOO_MANY_REQUESTS)
    );
    let r = c
        .get(app.url("/api/v1/devices"))
        .basic_auth("vera", Some("secret"))
        .send()
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "basic auth is the same door"
    );
    assert!(r.headers().contains_key("retry-after"));
    // Another user is not locked out by vera's guesser.
    assert!(sign_in(&c, &app, "oscar", "secret").is_ok());
}

#[test]
fn the_users_file_is_reread_while_running_and_a_bad_one_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let app = Appliance::start(dir.path());
    let c = client();
    let cookie = sign_in(&c, &app, "oscar", "secret").unwrap();
    let token = csrf_of(&c, &app, &cookie);
    let metric = |c: &Client| {
        let text = c
            .get(app.url("/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .unwrap()
            .text()
            .unwrap();
        text.lines()
            .find(|l| l.starts_with("wardops_access_users_last_reload_successful "))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    assert_eq!(metric(&c).as_deref(), Some("1"));
    // oscar becomes an admin: his open session may reload at once.
    std::fs::write(dir.path().join("users.yml"), users_file("admin")).unwrap();
    let reload = || {
        c.post(app.url("/-/reload"))
            .header(COOKIE, &cookie)
            .header("x-csrf-token", &token)
            .send()
            .unwrap()
            .status()
    };
    wait_for(Duration::from_secs(10), "oscar to be an admin", || {
        (reload() == StatusCode::OK).then_some(())
    });
    // A broken file changes nothing and says so.
    std::fs::write(
        dir.path().join("users.yml"),
        "basic_auth_users:\n  oscar: hunter2\n",
    )
    .unwrap();
    wait_for(
        Duration::from_secs(10),
        "the bad file to be reported",
        || (metric(&c).as_deref() == Some("0")).then_some(()),
    );
    assert_eq!(reload(), StatusCode::OK);
    assert!(app.log().contains("not a bcrypt hash"), "{}", app.log());
    // oscar removed: his session ends.
    std::fs::write(
        dir.path().join("users.yml"),
        users_file("operator")
            .replace(&format!("  oscar: {SECRET}\n"), "")
            .replace("  oscar: { role: operator }\n", ""),
    )
    .unwrap();
    wait_for(Duration::from_secs(10), "oscar's session to end", || {
        (reload() == StatusCode::UNAUTHORIZED).then_some(())
    });
}

#[test]
fn victoriametrics_scrapes_metrics_with_a_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let app = Appliance::start(dir.path());
    let target = app.base.trim_start_matches("http://").to_string();
    let vm = support::victoriametrics::VictoriaMetrics::start_scraping(
        std::slice::from_ref(&target),
        &format!("    bearer_token: {TOKEN}\n"),
    );
    let wrong = support::victoriametrics::VictoriaMetrics::start_scraping(
        &[target],
        "    bearer_token: wdo_not-the-token\n",
    );
    wait_for(Duration::from_secs(30), "a scraped device family", || {
        let found = vm.query("wardops_device_up");
        (!found.is_empty()).then_some(())
    });
    let up = wait_for(Duration::from_secs(30), "the refused scrape's `up`", || {
        Some(wrong.query("up")).filter(|up| !up.is_empty())
    });
    assert!(
        up.iter().all(|s| s["value"][1] == "0"),
        "a wrong token is not scraped: {up:?}"
    );
}

#[test]
fn hash_password_and_new_token_print_what_the_users_file_takes() {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wardops"))
        .args(["hash-password", "--cost", "4"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(
        bcrypt::verify("correct horse", hash.trim()).unwrap(),
        "{hash}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wardops"))
        .args(["new-token", "vmscrape", "--regions", "east,west"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    let entry = String::from_utf8(out.stderr).unwrap();
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(token.trim().as_bytes()));
    assert!(
        entry.contains(&format!(
            "vmscrape: {{ sha256: {digest}, role: viewer, regions: [east, west] }}"
        )),
        "{entry}"
    );
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_wardops"))
        .args(["new-token", "x", "--role", "root"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

/// Reads `resp` (an event stream) into a shared buffer from a thread of its own.
fn follow(mut resp: reqwest::blocking::Response) -> std::sync::Arc<parking_lot::Mutex<String>> {
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(String::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        while let Ok(n) = resp.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    seen
}

#[test]
fn a_region_scoped_stream_never_carries_another_regions_event() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let app = Appliance::start(dir.path());
    for device in ["west-atm", "east-router"] {
        wait_for(Duration::from_secs(20), "both devices up", || {
            let body = client()
                .get(app.url(&format!("/api/v1/devices/{device}")))
                .basic_auth("ada", Some("secret"))
                .send()
                .ok()?
                .text()
                .ok()?;
            body.contains("\"ping_status\":\"up\"").then_some(())
        });
    }
    let streaming = Client::builder().build().unwrap();
    let open = |user: &str| {
        let r = streaming
            .get(app.url("/api/v1/events"))
            .basic_auth(user, Some("secret"))
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        follow(r)
    };
    let nino = open("nino");
    let ada = open("ada");
    // The west device flaps (down, up, down, up) while the east one goes down once.
    // West's transitions (its alert frames name the device too, followed by its region).
    let transitions = |s: &str| s.matches("\"device\":\"west-atm\",\"address\"").count();
    for _ in 0..2 {
        let before = transitions(&ada.lock());
        let west = support::Blackhole::new("scope_west", &["127.71.0.2"]);
        let waited = std::time::Instant::now();
        while transitions(&ada.lock()) <= before {
            assert!(
                waited.elapsed() < Duration::from_secs(20),
                "west-atm never went down in ada's stream:\n{}\n{}",
                ada.lock(),
                app.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(west);
        let waited = std::time::Instant::now();
        while transitions(&ada.lock()) <= before + 1 {
            assert!(
                waited.elapsed() < Duration::from_secs(20),
                "west-atm never came back up in ada's stream:\n{}",
                ada.lock()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let east = support::Blackhole::new("scope_east", &["127.71.0.1"]);
    wait_for(
        Duration::from_secs(20),
        "east-router in nino's stream",
        || nino.lock().contains("\"east-router\"").then_some(()),
    );
    drop(east);
    let ada_saw = ada.lock().matches("\"west-atm\"").count();
    assert!(ada_saw >= 2, "the unscoped stream saw the flaps");
    let seen = nino.lock().clone();
    for secret in ["west-atm", "west1", "127.71.0.2", "\"west\""] {
        assert!(!seen.contains(secret), "{secret} in nino's stream:\n{seen}");
    }
}
