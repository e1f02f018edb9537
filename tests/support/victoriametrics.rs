//! A real VictoriaMetrics (Debian's `victoria-metrics`) on a loopback port of its own,
//! with its own storage, scraping the given targets every second; killed when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_for};

pub const BINARY: &str = "/usr/bin/victoria-metrics";

pub struct VictoriaMetrics {
    child: Option<Child>,
    pub url: String,
    dir: tempfile::TempDir,
}

impl VictoriaMetrics {
    /// Scrapes `http://{target}/metrics` for each of `targets` (`127.0.0.1:5001`) every
    /// second.
    pub fn start(targets: &[String]) -> VictoriaMetrics {
        Self::start_scraping(targets, "")
    }

    /// [`VictoriaMetrics::start`] with `job` added to the scrape job's YAML (indented
    /// four spaces: `    bearer_token: …\n`, `    basic_auth: …`).
    pub fn start_scraping(targets: &[String], job: &str) -> VictoriaMetrics {
        let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        Self::start_with(&format!(
            "{job}    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        ))
    }

    /// Scrapes every second as the scrape job `wardops` whose YAML after `job_name` is
    /// `job` (indented four spaces), with the default flags otherwise.
    pub fn start_with(job: &str) -> VictoriaMetrics {
        assert!(
            Path::new(BINARY).exists(),
            "{BINARY} is missing: apt-get install victoria-metrics"
        );
        let dir = tempfile::tempdir().unwrap();
        let scrape = format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: wardops\n{job}"
        );
        std::fs::write(dir.path().join("scrape.yml"), scrape).unwrap();
        // A free port can be taken between the probe and the bind: try a few.
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("vm.log")).unwrap();
            let mut child = Command::new(BINARY)
                .arg(format!(
                    "-storageDataPath={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                .arg(format!(
                    "-promscrape.config={}",
                    dir.path().join("scrape.yml").display()
                ))
                // Samples searchable a second after the scrape (default 30 s), and no
                // response cache in the way of the backfill.
                .arg("-search.latencyOffset=1s")
                .arg("-search.disableCache")
                .arg("-loggerLevel=WARN")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start victoria-metrics");
            let url = format!("http://127.0.0.1:{port}");
            let ready = wait_for(
                Duration::from_secs(20),
                "VictoriaMetrics to be ready",
                || {
                    if let Ok(Some(_)) = child.try_wait() {
                        return Some(false);
                    }
                    let resp = reqwest::blocking::get(format!("{url}/health")).ok()?;
                    resp.status().is_success().then_some(true)
                },
            );
            if ready {
                return VictoriaMetrics {
                    child: Some(child),
                    url,
                    dir,
                };
            }
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.path().join("vm.log")).unwrap_or_default();
        panic!("VictoriaMetrics did not start:\n{log}");
    }

    /// The series of an instant query `query` (its `data.result`).
    pub fn query(&self, query: &str) -> Vec<serde_json::Value> {
        let q: String = form_urlencoded_query(query);
        let resp = reqwest::blocking::Client::new()
            .get(format!("{}/api/v1/query?query={q}", self.url))
            .send()
            .expect("GET /api/v1/query");
        assert!(resp.status().is_success(), "{}", resp.status());
        let json: serde_json::Value = resp.json().unwrap();
        json["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Imports samples in the Prometheus text format with millisecond timestamps
    /// (`/api/v1/import/prometheus`), then makes them searchable.
    pub fn import(&self, text: &str) {
        let client = reqwest::blocking::Client::new();
        let resp = client
            .post(format!("{}/api/v1/import/prometheus", self.url))
            .body(text.to_string())
            .send()
            .expect("POST /api/v1/import/prometheus");
        assert!(resp.status().is_success(), "import: {}", resp.status());
        let resp = client
            .get(format!("{}/internal/force_flush", self.url))
            .send()
            .expect("GET /internal/force_flush");
        assert!(resp.status().is_success(), "force_flush: {}", resp.status());
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the process: a VictoriaMetrics whose port
    /// accepts connections and answers nothing.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} {pid}");
    }

    /// Stops it for good (its port then refuses connections).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("vm.log")).unwrap_or_default()
    }
}

/// `query` percent-encoded for a URL's query string.
fn form_urlencoded_query(query: &str) -> String {
    percent_encoding::utf8_percent_encode(query, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // SIGKILL ends a stopped process too; the thaw is for a test that panicked
            // between its own stop and continue, so that nothing is left frozen.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.stop();
    }
}
