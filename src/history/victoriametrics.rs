//! Reading a device's RTT and loss back from the VictoriaMetrics (or any
//! Prometheus-compatible query API) that scrapes this appliance's `/metrics`:
//! the PromQL over the appliance's own families (docs/metrics.md), one
//! `GET /api/v1/query_range` per series, and the answer's parsing.
//!
//! A page waits for it at most `victoriametrics.timeout` and reads at most
//! [`MAX_ANSWER`] bytes of each answer; whatever goes wrong (refused, slow, an error
//! status, not JSON, not a matrix, NaN) is an `Err` with a sentence for the page, never
//! a panic: the rest of the page renders without the chart.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use tokio::time::Instant;

use super::Range;
use super::recent::Recent;

/// More than this in one answer is not a chart of a few hundred points: it is refused
/// unread (`query_range` of one series over our steps is about 20 kB).
pub const MAX_ANSWER: usize = 1 << 20;
/// Points per series accepted (our steps ask for at most 361).
const MAX_POINTS: usize = 10_000;

/// A device's RTT (ms) and loss (%) over a range, NaN and infinities left out (a gap).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub rtt_ms: Vec<(DateTime<Utc>, f64)>,
    pub loss_percent: Vec<(DateTime<Utc>, f64)>,
}

impl Series {
    /// Points of both series together.
    pub fn points(&self) -> usize {
        self.rtt_ms.len() + self.loss_percent.len()
    }
}

/// The query API at one base URL, with its deadline.
pub struct VictoriaMetrics {
    base: String,
    endpoint: reqwest::Url,
    timeout: Duration,
    client: reqwest::Client,
    /// The answers of the last few seconds ([`super::recent`]).
    recent: parking_lot::Mutex<Recent>,
}

impl VictoriaMetrics {
    /// A client of the API at `base` (`http://vm:8428`, or a path prefix such as
    /// vmselect's `http://vmselect:8481/select/0/prometheus`).
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<VictoriaMetrics> {
        let base = base.trim_end_matches('/').to_string();
        let endpoint = reqwest::Url::parse(&format!("{base}/api/v1/query_range"))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect is a misconfigured URL; following it hides that.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wardops/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(VictoriaMetrics {
            base,
            endpoint,
            timeout,
            client,
            recent: Default::default(),
        })
    }

    /// The base URL, as the page names it.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `device`'s RTT and loss over `range` up to `end`: both queries at once, together
    /// bounded by the timeout; an answer (or failure) of the last
    /// [`super::recent::FRESH_FOR`] for the same device and range is used again.
    pub async fn device(
        &self,
        device: &str,
        range: Range,
        end: DateTime<Utc>,
    ) -> Result<Series, String> {
        if let Some(answer) = self.recent.lock().get(device, range, Instant::now()) {
            return answer;
        }
        let answer = self.ask(device, range, end).await;
        self.recent
            .lock()
            .put(device, range, answer.clone(), Instant::now());
        answer
    }

    async fn ask(&self, device: &str, range: Range, end: DateTime<Utc>) -> Result<Series, String> {
        let start = end - range.length();
        let [rtt, loss] = queries(device, range);
        let both = async {
            let (rtt, loss) = tokio::join!(
                self.query_range(&rtt, start, end, range.step()),
                self.query_range(&loss, start, end, range.step())
            );
            Ok::<_, String>(Series {
                rtt_ms: rtt?,
                loss_percent: loss?
                    .into_iter()
                    // Counter resets and rounding put a point a hair outside 0–100.
                    .map(|(t, v)| (t, v.clamp(0.0, 100.0)))
                    .collect(),
            })
        };
        match tokio::time::timeout(self.timeout, both).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {:?}", self.timeout)),
        }
    }

    async fn query_range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: TimeDelta,
    ) -> Result<Vec<(DateTime<Utc>, f64)>, String> {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("query", query)
            .append_pair("start", &start.timestamp().to_string())
            .append_pair("end", &end.timestamp().to_string())
            .append_pair("step", &format!("{}s", step.num_seconds()));
        let mut response = self.client.get(url).send().await.map_err(chain)?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(chain)? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(format!("answered more than {} KiB", MAX_ANSWER >> 10));
            }
            body.extend_from_slice(&chunk);
        }
        parse(status.as_u16(), &body)
    }
}

/// The two PromQL queries of a device: RTT in ms (the mean of its probes' RTT over each
/// window) and loss in % (echo requests without a reply over each window). Both are
/// aggregated to one series: several appliances (or scrape jobs) of one device are one
/// line, and a device absent from VictoriaMetrics is no series at all.
pub fn queries(device: &str, range: Range) -> [String; 2] {
    let d = quote(device);
    let w = format!("{}s", range.window().num_seconds());
    [
        format!("avg(avg_over_time(wardops_device_rtt_seconds{{device={d}}}[{w}])) * 1000"),
        format!(
            "100 * (1 - sum(increase(wardops_device_replies_total{{device={d}}}[{w}])) \
             / sum(increase(wardops_device_requests_total{{device={d}}}[{w}])))"
        ),
    ]
}

/// `s` as a PromQL double-quoted string (Go's escapes, which both Prometheus and
/// MetricsQL read): a device name with `"` or `\` selects itself, never another series.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: Vec<Matrix>,
}

#[derive(Deserialize)]
struct Matrix {
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// The points of a `query_range` answer of HTTP status `status` (one series or none),
/// or what is wrong with it.
pub fn parse(status: u16, body: &[u8]) -> Result<Vec<(DateTime<Utc>, f64)>, String> {
    let answer: Result<Answer, _> = serde_json::from_slice(body);
    if !(200..300).contains(&status) {
        let detail = match answer {
            Ok(Answer { error: Some(e), .. }) => format!(": {}", clip(&e)),
            _ => String::new(),
        };
        return Err(format!("answered HTTP {status}{detail}"));
    }
    let answer = answer.map_err(|e| format!("answered something that is not its JSON: {e}"))?;
    if answer.status != "success" {
        let e = answer.error.as_deref().unwrap_or("no reason given");
        return Err(format!("answered {}: {}", clip(&answer.status), clip(e)));
    }
    let data = answer.data.ok_or("answered success without data")?;
    if data.result_type != "matrix" {
        return Err(format!(
            "answered a {} where a matrix was asked for",
            clip(&data.result_type)
        ));
    }
    let series = match data.result.len() {
        0 => return Ok(Vec::new()),
        1 => data.result.into_iter().next().expect("one"),
        n => return Err(format!("answered {n} series where one was asked for")),
    };
    if series.values.len() > MAX_POINTS {
        return Err(format!("answered {} points", series.values.len()));
    }
    let mut points = Vec::with_capacity(series.values.len());
    for (t, v) in series.values {
        let value: f64 = v
            .parse()
            .map_err(|_| format!("answered a value that is not a number: {:?}", clip(&v)))?;
        let at = DateTime::from_timestamp_millis((t * 1000.0).round() as i64)
            .filter(|_| t.is_finite())
            .ok_or_else(|| format!("answered a time out of range: {t}"))?;
        // NaN (0/0: no requests in the window) and ±Inf are no data, a gap.
        if value.is_finite() {
            points.push((at, value));
        }
    }
    Ok(points)
}

/// At most 200 characters of what the other side wrote, for the page.
fn clip(s: &str) -> String {
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The error with its causes (`error sending request: … Connection refused`); the URL
/// is named by the page already.
fn chain(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    crate::outbound::error_text(e)
}

#[cfg(test)]
mod tests;
