//! A webhook receiver written for the tests: a small HTTP/1.1 server on 127.0.0.1:0 that
//! keeps every request it is sent (headers and body) and answers 200 — or, while told
//! to be down, 503 — so tests can check signatures, keys, grouping and order.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// What it was answered.
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn key(&self) -> &str {
        self.headers
            .get("idempotency-key")
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The message id in `wardops-<receiver>-<id>`.
    pub fn id(&self) -> i64 {
        self.key().rsplit('-').next().unwrap().parse().unwrap()
    }

    /// True if `X-Wardops-Signature` is the HMAC-SHA256 of the body under `secret`.
    pub fn signed_with(&self, secret: &str) -> bool {
        use hmac::{KeyInit, Mac};
        let Some(sig) = self.headers.get("x-wardops-signature") else {
            return false;
        };
        let Some(hex_sig) = sig.strip_prefix("sha256=") else {
            return false;
        };
        let Ok(bytes) = hex::decode(hex_sig) else {
            return false;
        };
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&self.body);
        mac.verify_slice(&bytes).is_ok()
    }
}

pub struct Sink {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    down: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU16>,
}

impl Sink {
    pub fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = Sink {
            port,
            received: Arc::default(),
            down: Arc::default(),
            delay_ms: Arc::default(),
        };
        let (received, down, delay) = (
            sink.received.clone(),
            sink.down.clone(),
            sink.delay_ms.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (received, down, delay) = (received.clone(), down.clone(), delay.clone());
                std::thread::spawn(move || serve(stream, &received, &down, &delay));
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// While down, every request is answered 503 (and kept, with that status).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Every answer waits this long (a slow receiver).
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis().min(60_000) as u16, Ordering::SeqCst);
    }

    /// Every request answered 2xx so far, in arrival order.
    pub fn delivered(&self) -> Vec<Received> {
        self.received
            .lock()
            .iter()
            .filter(|r| r.status == 200)
            .cloned()
            .collect()
    }

    /// Every request, refused ones too.
    pub fn all(&self) -> Vec<Received> {
        self.received.lock().clone()
    }
}

fn serve(stream: TcpStream, received: &Mutex<Vec<Received>>, down: &AtomicBool, delay: &AtomicU16) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let pause = delay.load(Ordering::SeqCst);
        if pause > 0 {
            std::thread::sleep(Duration::from_millis(u64::from(pause)));
        }
        let status = if down.load(Ordering::SeqCst) {
            503
        } else {
            200
        };
        received.lock().push(Received {
            headers,
            body,
            status,
        });
        let reason = if status == 200 {
            "OK"
        } else {
            "Service Unavailable"
        };
        let answer = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n");
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
