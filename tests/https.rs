//! HTTPS end to end: `wardops::http::serve_with` over TLS on 127.0.0.1:0 with a CA and
//! server certificates made by the `openssl` CLI, reached by reqwest trusting only that
//! CA. The certificate files are rotated under the running server (the new one is
//! served without a restart, a bad one keeps the old), a client that never says hello
//! is cut at the header timeout and frees its slot, plain HTTP to the port gets a clear
//! 400, and the appliance binary itself serves HTTPS from its settings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use wardops::config::settings::HttpSettings;
use wardops::http::tls::TlsVersion;
use wardops::http::{Body, Route, Run, Tls, TlsServerConfig, is_secure, response, serve_with};

mod support;

/// Longest any exchange may take before the test calls the server stuck.
const GUARD: Duration = Duration::from_secs(10);

/// A test CA in a temporary directory, and server certificates it signed.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=wardops test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ]);
        std::fs::write(
            pki.path("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("openssl is installed (scripts/test installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `<name>.crt` (signed by the CA, for 127.0.0.1 and localhost) and `<name>.key`.
    fn issue(&self, name: &str) {
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            &crt,
        ]);
    }

    /// Puts `<name>`'s pair where the server reads it, each file replaced at once
    /// (written aside, renamed over), as a rotation tool does.
    fn install(&self, name: &str) {
        for ext in ["crt", "key"] {
            let aside = self.path(&format!("server.{ext}.new"));
            std::fs::copy(self.path(&format!("{name}.{ext}")), &aside).unwrap();
            std::fs::rename(&aside, self.path(&format!("server.{ext}"))).unwrap();
        }
    }

    fn config(&self) -> TlsServerConfig {
        TlsServerConfig {
            cert_file: self.path("server.crt"),
            key_file: self.path("server.key"),
            min_version: None,
            max_version: None,
        }
    }

    /// The DER of `<name>.crt`, to tell which certificate a server presented.
    fn der(&self, name: &str) -> Vec<u8> {
        CertificateDer::from_pem_file(self.path(&format!("{name}.crt")))
            .unwrap()
            .to_vec()
    }

    /// A client that trusts this CA and nothing else, one connection per request. A
    /// client resumes its TLS sessions (and reports the certificate of the first), so a
    /// test that looks at the certificate served takes a new client for each look.
    fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(self.path("ca.crt")).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .tls_info(true)
            .pool_max_idle_per_host(0)
            .timeout(GUARD)
            .build()
            .unwrap()
    }
}

fn hello(_: &(), req: &Request<Bytes>) -> Response<Body> {
    let body = if is_secure(req) { "secure" } else { "plain" };
    response::bytes(StatusCode::OK, "text/plain", body)
}

struct Server {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start(tls: Tls, limits: HttpSettings) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Reserved: served on whichever lane a slot frees on (see the silent-client test).
    let routes = vec![
        Route::exact("/hello")
            .reserved()
            .sync(Run::Inline, &Arc::new(()), hello),
    ];
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_with(
        listener,
        routes,
        std::sync::Arc::new(wardops::access::gate::Gate::open()),
        limits,
        Some(tls),
        async move {
            let _ = stopped.await;
        },
    ));
    Server { addr, _stop: stop }
}

/// The body of `/hello` and the DER of the certificate the server presented.
async fn get(client: &reqwest::Client, server: &Server) -> reqwest::Result<(String, Vec<u8>)> {
    let url = format!("https://127.0.0.1:{}/hello", server.addr.port());
    let resp = client.get(url).send().await?.error_for_status()?;
    let cert = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("the server presented a certificate")
        .to_vec();
    Ok((resp.text().await?, cert))
}

/// The certificate a new client is presented.
async fn served(pki: &Pki, server: &Server) -> Vec<u8> {
    get(&pki.client(), server).await.unwrap().1
}

/// Polls until the server presents `want` (the reload looks every second).
async fn wait_served(pki: &Pki, server: &Server, want: &[u8]) {
    let deadline = Instant::now() + GUARD;
    loop {
        let cert = served(pki, server).await;
        if cert == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate is not served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_marks_requests_secure_and_follows_a_rotation() {
    let pki = Pki::new();
    pki.issue("one");
    pki.issue("two");
    pki.install("one");
    let tls = Tls::load(&pki.config()).unwrap();
    let metrics = tls.clone();
    let server = start(tls, HttpSettings::default()).await;
    let client = pki.client();

    let (body, cert) = get(&client, &server).await.unwrap();
    assert_eq!(body, "secure", "the handler sees the request came over TLS");
    assert_eq!(cert, pki.der("one"));

    // A client that does not trust the CA is refused: the chain is really checked.
    let other = Pki::new();
    let e = get(&other.client(), &server).await.unwrap_err();
    assert!(e.is_connect(), "{e:?}");

    pki.install("two");
    wait_served(&pki, &server, &pki.der("two")).await;
    assert!(metrics.metrics().last_successful());

    // A bad replacement: a certificate that is not PEM, then one's certificate over
    // two's key. Two stays served throughout, and the gauge says the reload failed.
    std::fs::write(pki.path("server.crt"), "not a certificate\n").unwrap();
    let deadline = Instant::now() + GUARD;
    while metrics.metrics().last_successful() {
        assert!(
            Instant::now() < deadline,
            "the bad certificate was not looked at"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served(&pki, &server).await, pki.der("two"));
    std::fs::copy(pki.path("one.crt"), pki.path("server.crt")).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(served(&pki, &server).await, pki.der("two"));
    assert!(!metrics.metrics().last_successful());

    // The key follows: the pair is whole again, and served.
    std::fs::copy(pki.path("one.key"), pki.path("server.key")).unwrap();
    wait_served(&pki, &server, &pki.der("one")).await;
    assert!(metrics.metrics().last_successful());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_cut_at_the_header_timeout_and_frees_its_slot() {
    let pki = Pki::new();
    pki.issue("one");
    pki.install("one");
    // One public slot and one reserve slot: two silent clients take both. Their
    // deadlines end together and either may free its slot first, hence a reserved
    // route for the request that waits.
    let limits = HttpSettings {
        max_connections: 1,
        max_connections_per_client: Some(3),
        header_timeout: Duration::from_secs(1),
        ..HttpSettings::default()
    };
    let server = start(Tls::load(&pki.config()).unwrap(), limits).await;
    let client = pki.client();
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // The server's accept is not held by a handshake: both were accepted (the third
    // connection waits in the backlog) and the served request waits only for a slot.
    let (body, _) = get(&client, &server).await.unwrap();
    assert_eq!(body, "secure");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "served after {waited:?}, before a silent client was cut"
    );
    for mut s in silent {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(GUARD, s.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a silent client was closed: {read:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_the_https_port_gets_a_clear_400_and_old_protocols_are_refused() {
    let pki = Pki::new();
    pki.issue("one");
    pki.install("one");
    let config = TlsServerConfig {
        min_version: Some(TlsVersion::Tls13),
        ..pki.config()
    };
    let server = start(Tls::load(&config).unwrap(), HttpSettings::default()).await;

    let plain = reqwest::Client::builder().timeout(GUARD).build().unwrap();
    let resp = plain
        .get(format!("http://127.0.0.1:{}/hello", server.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.text().await.unwrap(),
        "this port speaks HTTPS: use https:// in the URL\n"
    );

    // Neither TLS nor HTTP: closed without an answer.
    let mut junk = TcpStream::connect(server.addr).await.unwrap();
    junk.write_all(&[0u8; 64]).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(GUARD, junk.read_to_end(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?} {buf:?}");

    // min_version TLS13: a TLS 1.2 client fails its handshake, a 1.3 one is served.
    let pem = std::fs::read(pki.path("ca.crt")).unwrap();
    let old = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .tls_version_max(reqwest::tls::Version::TLS_1_2)
        .timeout(GUARD)
        .build()
        .unwrap();
    assert!(get(&old, &server).await.is_err());
    assert_eq!(get(&pki.client(), &server).await.unwrap().0, "secure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_stays_the_default_and_is_not_marked_secure() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = vec![Route::exact("/hello").sync(Run::Inline, &Arc::new(()), hello)];
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(wardops::http::serve(
        listener,
        routes,
        HttpSettings::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let body = reqwest::Client::new()
        .get(format!("http://{addr}/hello"))
        .timeout(GUARD)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "plain");
}

/// The real binary serving HTTPS from `<dir>/wardops.yaml`; killed when dropped.
struct Appliance {
    child: std::process::Child,
    base: String,
    client: reqwest::blocking::Client,
}

impl Appliance {
    fn start(dir: &Path, ca: &Path) -> Appliance {
        let port = support::free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_wardops"))
            .args(["serve", "-c"])
            .arg(dir.join("wardops.yaml"))
            .env("WARDOPS_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "WARDOPS_DATABASE_URL",
                format!("sqlite://{}", dir.join("wardops.db").display()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("wardops.log")).unwrap())
            .spawn()
            .expect("start wardops");
        let pem = std::fs::read(ca).unwrap();
        let client = reqwest::blocking::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .redirect(reqwest::redirect::Policy::none())
            .timeout(GUARD)
            .build()
            .unwrap();
        let app = Appliance {
            child,
            base: format!("https://127.0.0.1:{port}"),
            client,
        };
        support::wait_for(Duration::from_secs(20), "the appliance over HTTPS", || {
            app.get("/healthz").ok()
        });
        app
    }

    fn get(&self, path: &str) -> reqwest::Result<String> {
        let resp = self.client.get(format!("{}{path}", self.base)).send()?;
        resp.error_for_status()?.text()
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_appliance_serves_https_from_its_settings() {
    let pki = Pki::new();
    pki.issue("one");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    support::write_fast_config(d, "tls", &[("tls-1", "127.61.0.1")]);
    std::fs::create_dir(d.join("tls")).unwrap();
    std::fs::copy(pki.path("one.crt"), d.join("tls/server.crt")).unwrap();
    std::fs::copy(pki.path("one.key"), d.join("tls/server.key")).unwrap();
    // Paths relative to the settings file.
    let mut settings = std::fs::read_to_string(d.join("wardops.yaml")).unwrap();
    settings.push_str(
        "http:\n  tls_server_config:\n    cert_file: tls/server.crt\n    key_file: tls/server.key\n",
    );
    settings.push_str(support::ACCESS);
    std::fs::write(d.join("wardops.yaml"), settings).unwrap();
    support::write_users(d);
    let app = Appliance::start(d, &pki.path("ca.crt"));
    // A session cookie made over HTTPS is never sent back over plain HTTP.
    let login = app
        .client
        .post(format!("{}/login", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=operator&password=secret&next=%2F")
        .send()
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let devices = app.get("/api/v1/devices").unwrap();
    assert!(devices.contains("tls-1"), "the API over HTTPS: {devices}");
    let metrics = app.get("/metrics").unwrap();
    assert!(
        metrics.contains("wardops_tls_config_last_reload_successful 1"),
        "{metrics}"
    );
}

#[test]
fn the_appliance_refuses_to_start_on_a_bad_pair() {
    let pki = Pki::new();
    pki.issue("one");
    pki.issue("two");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    support::write_fast_config(d, "tls", &[("tls-1", "127.61.0.2")]);
    let mut settings = std::fs::read_to_string(d.join("wardops.yaml")).unwrap();
    settings.push_str(&format!(
        "http:\n  tls_server_config:\n    cert_file: {}\n    key_file: {}\n",
        pki.path("one.crt").display(),
        pki.path("two.key").display()
    ));
    std::fs::write(d.join("wardops.yaml"), settings).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wardops"))
        .args(["serve", "-c"])
        .arg(d.join("wardops.yaml"))
        .env("WARDOPS_LISTEN", "127.0.0.1:0")
        .env(
            "WARDOPS_DATABASE_URL",
            format!("sqlite://{}", d.join("wardops.db").display()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let mismatch = format!(
        "tls_server_config: the key in {} does not match the certificate in {}",
        pki.path("two.key").display(),
        pki.path("one.crt").display()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&mismatch), "{stderr}");
    // `check` reads the same files, so what it accepts `serve` does not refuse.
    let check = Command::new(env!("CARGO_BIN_EXE_wardops"))
        .args(["check", "-c"])
        .arg(d.join("wardops.yaml"))
        .output()
        .unwrap();
    assert!(!check.status.success());
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(stdout.contains(&mismatch), "{stdout}");
}
