//! A real Alertmanager (Debian's `prometheus-alertmanager`) on a loopback port of its own,
//! with its own storage and no clustering; killed and removed when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_for};

pub const BINARY: &str = "/usr/bin/prometheus-alertmanager";

/// Routes everything to a receiver that sends nothing: the tests read the alerts back
/// through the API, which shows what Alertmanager took.
const CONFIG: &str = "route:\n  receiver: nobody\n  group_wait: 1h\nreceivers:\n  - name: nobody\n";

pub struct Alertmanager {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    pub fn start() -> Alertmanager {
        Alertmanager::launch(None)
    }

    /// On `port` (an Alertmanager that comes back where it was).
    pub fn start_on(port: u16) -> Alertmanager {
        Alertmanager::launch(Some(port))
    }

    fn launch(port: Option<u16>) -> Alertmanager {
        assert!(
            Path::new(BINARY).exists(),
            "{BINARY} is missing: apt-get install prometheus-alertmanager"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("alertmanager.yml"), CONFIG).unwrap();
        // A free port can be taken between the probe and the bind: try a few.
        for _ in 0..5 {
            let port = port.unwrap_or_else(free_port);
            let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
            let mut child = Command::new(BINARY)
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("alertmanager.yml").display()
                ))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start prometheus-alertmanager");
            let url = format!("http://127.0.0.1:{port}");
            let ready = wait_for(Duration::from_secs(20), "Alertmanager to be ready", || {
                if let Ok(Some(_)) = child.try_wait() {
                    return Some(false);
                }
                let resp = reqwest::blocking::get(format!("{url}/-/ready")).ok()?;
                resp.status().is_success().then_some(true)
            });
            if ready {
                return Alertmanager {
                    child,
                    url,
                    _dir: dir,
                };
            }
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.path().join("alertmanager.log")).unwrap_or_default();
        panic!("Alertmanager did not start:\n{log}");
    }

    /// Alertmanager's own `GET /api/v2/alerts`: the alerts it holds as active (not
    /// resolved, not expired).
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        let resp = reqwest::blocking::get(format!("{}/api/v2/alerts", self.url))
            .expect("GET /api/v2/alerts");
        assert!(resp.status().is_success(), "{}", resp.status());
        resp.json().unwrap()
    }

    /// The alert of `alertname` for `device`, if Alertmanager holds it as active.
    pub fn alert(&self, alertname: &str, device: &str) -> Option<serde_json::Value> {
        self.alerts()
            .into_iter()
            .find(|a| a["labels"]["alertname"] == alertname && a["labels"]["device"] == device)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
