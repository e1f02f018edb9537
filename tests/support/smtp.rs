//! A real SMTP server (aiosmtpd, Debian's `python3-aiosmtpd`, run by `smtp_sink.py`) on a
//! loopback port the kernel picked; each mail it accepts is read back as Python's mail
//! parser sees it (headers decoded, parts by content type). Killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Debian's interpreter, where `python3-aiosmtpd` is installed (a `python3` earlier on
/// the PATH, e.g. pyenv's, may not have it).
pub const PYTHON: &str = "/usr/bin/python3";

pub struct Smtp {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

/// One mail as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub login: Option<String>,
    pub tls: bool,
    pub headers: Vec<(String, String)>,
    pub content_type: String,
    /// Each leaf part's decoded content by its content type.
    pub parts: serde_json::Map<String, serde_json::Value>,
    /// The whole message as sent.
    pub data: String,
}

impl Received {
    /// The (decoded) value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The decoded text of the part of content type `mime` (`text/plain`, `text/html`).
    pub fn part(&self, mime: &str) -> Option<&str> {
        self.parts.get(mime)?.as_str()
    }
}

impl Smtp {
    /// A server that takes any mail.
    pub fn start() -> Smtp {
        Smtp::start_with(&[])
    }

    /// With `smtp_sink.py`'s options (`--auth user:pass`, `--starttls cert key`, `--tls cert key`).
    pub fn start_with(args: &[&str]) -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .arg(dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("smtp.log")).unwrap())
            .spawn()
            .expect("start smtp_sink.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Ok(port) = line.trim().parse() else {
            let log = std::fs::read_to_string(dir.path().join("smtp.log")).unwrap_or_default();
            panic!("smtp_sink.py did not start (apt-get install python3-aiosmtpd):\n{log}")
        };
        Smtp { child, port, dir }
    }

    /// What the server logged (its errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("smtp.log")).unwrap_or_default()
    }

    /// Every mail received so far, in order.
    pub fn mails(&self) -> Vec<Received> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files.iter().map(|f| read(f)).collect()
    }

    /// Waits up to `timeout` for at least `n` mails; all of them.
    pub fn wait_mails(&self, n: usize, timeout: Duration) -> Vec<Received> {
        super::wait_for(timeout, &format!("{n} mail(s)"), || {
            let mails = self.mails();
            (mails.len() >= n).then_some(mails)
        })
    }
}

fn read(file: &Path) -> Received {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let text = |k: &str| v[k].as_str().unwrap().to_string();
    Received {
        mail_from: text("mail_from"),
        rcpt_tos: v["rcpt_tos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect(),
        login: v["login"].as_str().map(str::to_string),
        tls: v["tls"].as_bool().unwrap(),
        headers: v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
            .collect(),
        content_type: text("content_type"),
        parts: v["parts"].as_object().unwrap().clone(),
        data: text("data"),
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
