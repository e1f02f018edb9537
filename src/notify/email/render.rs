//! What a notification mail says: its subject (the branch and the count, e.g.
//! `[wardops] east/e-01: 7 devices down`) and its plain and HTML bodies, rendered from
//! `templates/notify/` by minijinja (the `.html` one autoescaped: device names, labels and
//! summaries come from the inventory and are never markup).

use std::sync::LazyLock;

use minijinja::Environment;
use serde::Serialize;

use crate::notify::alertmanager::describe;
use crate::notify::{Message, Notice};
use crate::read_model::Rfc3339;

const PLAIN: &str = "email.txt";
const HTML: &str = "email.html";

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // Block tags on their own lines, without the blank lines they would leave.
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    // Both are compiled into the binary and covered by the tests below: a broken one
    // fails them, it cannot fail at run time.
    env.add_template(PLAIN, include_str!("../../../templates/notify/email.txt"))
        .expect("templates/notify/email.txt compiles");
    env.add_template(HTML, include_str!("../../../templates/notify/email.html"))
        .expect("templates/notify/email.html compiles");
    env
});

/// A rendered mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    pub subject: String,
    pub plain: String,
    pub html: String,
}

/// What the templates are given.
#[derive(Debug, Serialize)]
struct View<'a> {
    subject: &'a str,
    receiver: &'a str,
    firing: Vec<Line<'a>>,
    resolved: Vec<Line<'a>>,
    summarised: u32,
    test: bool,
    key: &'a str,
}

/// One notice as the templates show it.
#[derive(Debug, Serialize)]
struct Line<'a> {
    device: &'a str,
    address: &'a str,
    kind: &'a str,
    place: String,
    condition: &'a str,
    severity: &'a str,
    summary: &'a str,
    description: String,
    since: String,
    resolved_at: Option<String>,
    unreachable_behind: u32,
    labels: Vec<String>,
    url: Option<&'a str>,
}

impl<'a> Line<'a> {
    fn new(n: &'a Notice) -> Line<'a> {
        Line {
            device: &n.device,
            address: &n.address,
            kind: &n.kind,
            place: place_of(n),
            condition: &n.condition,
            severity: &n.severity,
            summary: &n.summary,
            description: describe(n),
            since: Rfc3339(n.down_since.unwrap_or(n.opened_at)).to_string(),
            resolved_at: n.resolved_at.map(|t| Rfc3339(t).to_string()),
            unreachable_behind: n.unreachable_behind,
            labels: n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            url: n.url.as_deref(),
        }
    }
}

/// `message` as a mail.
pub fn render(message: &Message) -> Result<Mail, minijinja::Error> {
    let subject = subject(message);
    let firing: Vec<Line> = message.firing().map(Line::new).collect();
    let resolved: Vec<Line> = message.resolved().map(Line::new).collect();
    let view = View {
        subject: &subject,
        receiver: &message.receiver,
        firing,
        resolved,
        summarised: message.summarised,
        test: message.test,
        key: &message.idempotency_key,
    };
    let context = minijinja::Value::from(minijinja::value::Serde(&view));
    Ok(Mail {
        plain: TEMPLATES.get_template(PLAIN)?.render(&context)?,
        html: TEMPLATES.get_template(HTML)?.render(&context)?,
        subject,
    })
}

/// `[wardops] east/e-01: 7 devices down`, `[wardops] east/e-01: resolved, 7 devices up
/// again`, `[wardops] east/e-01: 3 devices down, 4 resolved`; one notice names its device.
pub fn subject(message: &Message) -> String {
    if message.test {
        return format!("[wardops] test message to receiver {}", message.receiver);
    }
    let firing: Vec<&Notice> = message.firing().collect();
    let resolved: Vec<&Notice> = message.resolved().collect();
    let what = match (firing.len(), resolved.len()) {
        (0, 0) => "nothing new".to_string(),
        (f, 0) => count(f, &firing, "down", "firing"),
        (0, r) => format!("resolved, {}", count(r, &resolved, "up again", "resolved")),
        (f, r) => format!("{}, {r} resolved", count(f, &firing, "down", "firing")),
    };
    let mut subject = format!("[wardops] {}: {what}", place(message));
    if let [only] = message.notices.as_slice() {
        subject.push_str(&format!(" ({})", only.device));
    }
    if message.summarised > 0 {
        subject.push_str(&format!(" (+{} older, summarised)", message.summarised));
    }
    subject
}

/// `7 devices down` if every notice is a `device_down`, else `7 alerts firing`.
fn count(n: usize, notices: &[&Notice], down: &str, other: &str) -> String {
    let all_down = notices.iter().all(|n| n.condition == "device_down");
    let noun = match (all_down, n) {
        (true, 1) => "device",
        (true, _) => "devices",
        (false, 1) => "alert",
        (false, _) => "alerts",
    };
    format!("{n} {noun} {}", if all_down { down } else { other })
}

/// Where the message's devices are: their branch (`east/e-01`) if they share one, else
/// their region, else as many regions as there are; the group's values if there are no
/// notices (a summary only).
fn place(message: &Message) -> String {
    let mut places = message.notices.iter().map(|n| (&n.region, &n.branch));
    let Some((region, branch)) = places.next() else {
        let values: Vec<&str> = message.group.values().map(String::as_str).collect();
        return if values.is_empty() {
            "all devices".to_string()
        } else {
            values.join("/")
        };
    };
    let (mut same_region, mut same_branch) = (true, true);
    let mut regions = std::collections::BTreeSet::from([region]);
    for (r, b) in places {
        same_branch &= r == region && b == branch;
        same_region &= r == region;
        regions.insert(r);
    }
    match (same_region, same_branch) {
        (_, true) => place_of(&message.notices[0]),
        (true, false) => format!("{region} (several branches)"),
        (false, _) => format!("{} regions", regions.len()),
    }
}

fn place_of(n: &Notice) -> String {
    match (n.region.is_empty(), n.branch.is_empty()) {
        (false, false) => format!("{}/{}", n.region, n.branch),
        (false, true) => n.region.clone(),
        (true, false) => n.branch.clone(),
        (true, true) => n.device.clone(),
    }
}

#[cfg(test)]
mod tests;
