//! OpenID Connect sign-in end to end: the real binary and a real OpenID provider (npm's
//! `oidc-provider`, tests/oidc/provider.mjs) started by the test on loopback ports of
//! their own. The browser's part of the flow (redirects, the provider's login and
//! consent forms, cookies) is driven with reqwest. Asserts the role and regions mapped
//! from claims, the refusal of an unmapped user and of a forged or replayed `state`,
//! and that the appliance starts and takes password logins while the provider is down.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use support::{Appliance, SECRET_HASH, free_port, wait_for};

const CLIENT_SECRET: &str = "wardops-test-secret";

/// tests/oidc with its node_modules, installed (`npm ci`) on first use; scripts/test
/// and .ci/run install it beforehand.
fn provider_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        if !dir.join("node_modules/oidc-provider").exists() {
            let ok = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .expect("npm (nodejs) is needed for the OpenID provider: see scripts/test");
            assert!(ok.success(), "npm ci in tests/oidc failed");
        }
    });
    dir
}

/// The OpenID provider; ended when dropped (its stdin closes too, if we die first).
struct Provider {
    child: Child,
    port: u16,
}

impl Provider {
    /// Starts it on `port` (0: a free one) for the appliance's `redirect` URL; with
    /// `userinfo`, its ID tokens carry only `sub` and the rest is in userinfo.
    fn start(redirect: &str, port: u16, userinfo: bool) -> Provider {
        let mut child = Command::new("node")
            .env("USERINFO", if userinfo { "1" } else { "0" })
            .arg(provider_dir().join("provider.mjs"))
            .arg(redirect)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the provider did not start: {line:?}"));
        Provider { child, port }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two regions of one device each; anonymous access off; a users file with `vera`
/// (viewer, password "secret"); OIDC against `issuer`, groups → roles, regions claim.
fn write_config(dir: &Path, issuer: &str, app_port: u16) {
    std::fs::write(dir.join("oidc-secret"), format!("{CLIENT_SECRET}\n")).unwrap();
    std::fs::write(
        dir.join("wardops.yaml"),
        format!(
            "{}reload:\n  http_endpoint: true\naccess:\n  users_file: users.yml\n  anonymous: off\n  oidc:\n    name: Test IdP\n    issuer: {issuer}\n    client_id: wardops\n    client_secret_file: oidc-secret\n    redirect_url: http://127.0.0.1:{app_port}/login/oidc/callback\n    scopes: [openid, profile, groups]\n    role_claim: groups\n    roles:\n      admin: [noc-admins]\n      operator: [noc-operators]\n      viewer: [noc]\n    regions_claim: regions\n",
            support::FAST_PROBE
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("inventory")).unwrap();
    std::fs::write(
        dir.join("inventory/all.yaml"),
        "regions:\n  - name: east\n    branches:\n      - name: east1\n        devices:\n          - { name: east-router, address: 127.72.0.1, kind: router }\n  - name: west\n    branches:\n      - name: west1\n        devices:\n          - { name: west-atm, address: 127.72.0.2, kind: atm }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("users.yml"),
        format!("basic_auth_users:\n  vera: {SECRET_HASH}\n"),
    )
    .unwrap();
}

/// The provider and the appliance pointed at it.
struct Setup {
    _dir: tempfile::TempDir,
    provider: Provider,
    app: Appliance,
}

fn setup() -> Setup {
    setup_with(false)
}

fn setup_with(userinfo: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/login/oidc/callback");
    let provider = Provider::start(&redirect, 0, userinfo);
    write_config(dir.path(), &provider.issuer(), port);
    let app = Appliance::start_on(dir.path(), port, &[]);
    Setup {
        _dir: dir,
        provider,
        app,
    }
}

/// A browser: keeps cookies, follows no redirect by itself.
fn browser() -> Client {
    Client::builder()
        .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn location(r: &Response) -> reqwest::Url {
    let to = r.headers()[LOCATION].to_str().unwrap();
    r.url().join(to).unwrap()
}

/// The value of `attr="…"` in the first tag of `html` that has it.
fn attribute<'a>(html: &'a str, attr: &str) -> Option<&'a str> {
    let start = html.find(&format!("{attr}=\""))? + attr.len() + 2;
    let len = html[start..].find('"')?;
    Some(&html[start..start + len])
}

/// Signs `user` in through the provider from `/login/oidc?next=/monitor`, answering
/// its login and consent forms: the appliance's answer to the callback, and the
/// callback URL (to replay it).
fn sign_in(b: &Client, s: &Setup, user: &str) -> (Response, reqwest::Url) {
    let callback = s.app.url("/login/oidc/callback");
    let mut r = b
        .get(s.app.url("/login/oidc?next=%2Fmonitor"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().unwrap());
    for _ in 0..20 {
        if r.status().is_redirection() {
            let to = location(&r);
            let at_callback = to.as_str().starts_with(&callback);
            r = b.get(to.clone()).send().unwrap();
            if at_callback {
                return (r, to);
            }
            continue;
        }
        let url = r.url().clone();
        let html = r.text().unwrap();
        assert!(
            html.contains("<form"),
            "a page of the provider without a form: {html}"
        );
        let action = url.join(attribute(&html, "action").unwrap()).unwrap();
        let fields: &[(&str, &str)] = if html.contains("value=\"login\"") {
            &[("prompt", "login"), ("login", user), ("password", "any")]
        } else {
            &[("prompt", "consent")]
        };
        r = b
            .post(action)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields))
            .send()
            .unwrap();
    }
    panic!("the provider never sent the browser back");
}

fn form(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

fn session_cookie(r: &Response) -> String {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("wardops_session="))
        .unwrap_or_else(|| panic!("no session cookie: {:?}", r.headers()))
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// A page session's CSRF token, as the login page's sign-out form carries it.
fn csrf(c: &Client, app: &Appliance, cookie: &str) -> String {
    let html = c
        .get(app.url("/login"))
        .header(COOKIE, cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let at = html.find("name=\"csrf_token\"").expect("a sign-out form");
    attribute(&html[at..], "value").unwrap().to_string()
}

fn plain() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn device_names(c: &Client, app: &Appliance, cookie: &str) -> String {
    let r = c
        .get(app.url("/api/v1/devices"))
        .header(COOKIE, cookie)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().unwrap()
}

#[test]
fn roles_come_from_the_group_claim() {
    let s = setup();
    let login = plain()
        .get(s.app.url("/login"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        login.contains("Sign in with Test IdP") && login.contains("/login/oidc?next="),
        "{login}"
    );
    let b = browser();
    let (r, _) = sign_in(&b, &s, "oscar");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/monitor");
    let cookie = session_cookie(&r);
    let c = plain();
    let page = c
        .get(s.app.url("/login"))
        .header(COOKIE, &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("<b id=\"signed-in-as\">oscar</b> (operator)."),
        "{page}"
    );
    // Regions claim "*": every region.
    let devices = device_names(&c, &s.app, &cookie);
    assert!(devices.contains("east-router") && devices.contains("west-atm"));
    // An operator acknowledges (past the door: the alert does not exist, 404) where a
    // viewer of the provider may not (403).
    let token = csrf(&c, &s.app, &cookie);
    let ack = |cookie: &str, token: &str| {
        c.post(s.app.url("/api/v1/alerts/999999/ack"))
            .header(COOKIE, cookie)
            .header("x-csrf-token", token)
            .header("content-type", "application/json")
            .body(r#"{"comment":"looking"}"#)
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(ack(&cookie, &token), StatusCode::NOT_FOUND);
    let (r, _) = sign_in(&browser(), &s, "vic");
    let viewer = session_cookie(&r);
    assert_eq!(
        ack(&viewer, &csrf(&c, &s.app, &viewer)),
        StatusCode::FORBIDDEN
    );
    // Nor may it reload (admin's): the session is an operator's, not more.
    let reload = |cookie: &str, token: &str| {
        c.post(s.app.url("/-/reload"))
            .header(COOKIE, cookie)
            .header("x-csrf-token", token)
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(reload(&cookie, &token), StatusCode::FORBIDDEN);
    // An admin from the noc-admins group may.
    let (r, _) = sign_in(&browser(), &s, "ada");
    let admin = session_cookie(&r);
    let token = csrf(&c, &s.app, &admin);
    assert_eq!(reload(&admin, &token), StatusCode::OK);
    let log = s.app.log();
    assert!(
        log.contains("action=\"login\"") && log.contains("detail=\"oidc\""),
        "the sign-in is audited: {log}"
    );
}

#[test]
fn a_region_claim_scopes_the_session() {
    let s = setup();
    let (r, _) = sign_in(&browser(), &s, "nino");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = session_cookie(&r);
    let page = plain()
        .get(s.app.url("/login"))
        .header(COOKIE, &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("<b id=\"signed-in-as\">nino</b> (operator), of the regions <span id=\"signed-in-regions\">east</span>"),
        "{page}"
    );
    // What the surfaces show of a scope is tests/access_scope.rs's (every surface
    // filters by the principal's scope, whatever signed it in).
}

#[test]
fn claims_the_id_token_lacks_are_read_from_userinfo() {
    let s = setup_with(true);
    let (r, _) = sign_in(&browser(), &s, "nino");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = plain()
        .get(s.app.url("/login"))
        .header(COOKIE, session_cookie(&r))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("<b id=\"signed-in-as\">nino</b> (operator), of the regions <span id=\"signed-in-regions\">east</span>"),
        "{page}"
    );
}

#[test]
fn a_user_without_a_mapped_role_is_refused() {
    let s = setup();
    let (r, _) = sign_in(&browser(), &s, "sam");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        !r.headers()
            .get_all(SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("wardops_session=")),
        "no session"
    );
    let page = r.text().unwrap();
    assert!(
        page.contains("sam has no role in wardops") && page.contains("id=\"login-form\""),
        "the login page with why: {page}"
    );
    let log = s.app.log();
    assert!(
        log.contains("refused: sam has no role in wardops"),
        "the refusal is audited: {log}"
    );
}

#[test]
fn a_forged_or_replayed_state_is_refused() {
    let s = setup();
    let b = browser();
    let (r, callback) = sign_in(&b, &s, "oscar");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Replayed: the same code and state again, from the same browser.
    let again = b.get(callback.clone()).send().unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let page = again.text().unwrap();
    assert!(page.contains("unknown, already used or expired"), "{page}");
    // A callback link made by someone else, opened by a browser that did not begin
    // that sign-in (login CSRF): its state cookie is missing, so it is refused.
    let b2 = browser();
    let r = b2.get(s.app.url("/login/oidc")).send().unwrap();
    let to = location(&r);
    let state = to
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let forged = format!(
        "{}?code=made-up&state={state}",
        s.app.url("/login/oidc/callback")
    );
    let r = browser().get(&forged).send().unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // A state never issued, with a cookie to match it.
    let r = plain()
        .get(s.app.url("/login/oidc/callback?code=x&state=forged"))
        .header(COOKIE, "wardops_oidc=forged")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The provider's own refusal is said as such.
    let r = plain()
        .get(s.app.url(
            "/login/oidc/callback?error=access_denied&error_description=the+user+said+no&state=x",
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.text()
            .unwrap()
            .contains("access_denied: the user said no")
    );
}

#[test]
fn password_logins_work_while_the_provider_is_down_and_it_is_found_later() {
    let dir = tempfile::tempdir().unwrap();
    let (app_port, idp_port) = (free_port(), free_port());
    let redirect = format!("http://127.0.0.1:{app_port}/login/oidc/callback");
    write_config(
        dir.path(),
        &format!("http://127.0.0.1:{idp_port}"),
        app_port,
    );
    let app = Appliance::start_on(dir.path(), app_port, &[]);
    let c = plain();
    let r = c
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("user", "vera"),
            ("password", "secret"),
            ("next", "/"),
        ]))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "password login");
    let r = c.get(app.url("/login/oidc")).send().unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let page = r.text().unwrap();
    assert!(
        page.contains("cannot be reached now") && page.contains("id=\"login-form\""),
        "{page}"
    );
    assert!(
        app.log()
            .contains("OpenID provider discovery failed; password logins still work"),
        "{}",
        app.log()
    );
    // The provider comes up: the background retries find it, with no sign-in asking.
    let provider = Provider::start(&redirect, idp_port, false);
    let s = Setup {
        _dir: dir,
        provider,
        app,
    };
    wait_for(
        Duration::from_secs(30),
        "the provider to be discovered",
        || {
            s.app
                .log()
                .contains("OpenID provider discovered")
                .then_some(())
        },
    );
    let (r, _) = sign_in(&browser(), &s, "oscar");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let _ = s.provider.port;
}
