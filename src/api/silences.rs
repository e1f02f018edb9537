//! `GET /api/v1/silences` (viewer), `POST /api/v1/silences` (operator) and
//! `POST /api/v1/silences/{id}/expire` (operator): operators' ad-hoc maintenance
//! windows ([`crate::maintenance::silence`]), with the same effect as a window in the
//! inventory.
//!
//! A new silence names its devices by matchers (`region`, `branch`, `device`, `kind`:
//! each set must equal the device's), starts at `starts_at` (default now; a time in the
//! past is now — a silence cannot rewrite what was already seen, nor the availability
//! reports built on it) and lasts `duration` (`2h`, `90m`) or until `ends_at`, at most
//! [`MAX_DURATION`]. It must say why (`comment`) and cover at least one device of the
//! running inventory: a typo (`atm-01` for `ATM-01`) is refused, not a silence that
//! silences nothing. A user limited to regions silences only in them: the region is
//! filled in when the devices named lie in one of theirs, and refused otherwise.
//!
//! The body is JSON or a page's form (which may name a device by `of` and what to cover
//! by `cover`: `device`, `branch` or `region`; `back` answers it with a 303). The
//! silence covers its devices at once — it goes to the state before the answer — and is
//! stored through the writer (spooled while the database is away), as is its early end.
//! Both are in the audit log.
//!
//! A region-limited user sees a silence only if it covers one of their devices, and its
//! device count is of theirs.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::form;
use crate::access::Principal;
use crate::config::Inventory;
use crate::context::Context;
use crate::http::BoxFuture;
use crate::http::response::{self, Body};
use crate::maintenance::silence::{Phase, Refused};
use crate::maintenance::{Matchers, Silence};
use crate::read_model::Rfc3339;
use crate::store::RecordKind;

pub const PATH: &str = "/api/v1/silences";
/// The expire route's prefix; the rest is `{id}/expire`.
pub const PREFIX: &str = "/api/v1/silences/";

/// The longest silence: planned work, not a way to switch monitoring off.
pub const MAX_DURATION: TimeDelta = TimeDelta::days(31);
/// How far ahead a silence may start.
pub const MAX_AHEAD: TimeDelta = TimeDelta::days(31);
/// Characters of a matcher's value (names in the inventory are shorter).
const MAX_MATCHER: usize = 256;

/// A silence as the API shows it.
#[derive(Serialize)]
pub struct Item<'a> {
    pub id: &'a str,
    #[serde(flatten)]
    pub matchers: &'a Matchers,
    pub starts_at: Rfc3339,
    pub ends_at: Rfc3339,
    pub state: Phase,
    pub comment: &'a str,
    pub created_by: &'a str,
    pub created_at: Rfc3339,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<Rfc3339>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired_by: Option<&'a str>,
    /// Devices of the running inventory it covers (of the caller's regions).
    pub devices: usize,
}

impl<'a> Item<'a> {
    pub fn of(s: &'a Silence, now: DateTime<Utc>, devices: usize) -> Item<'a> {
        Item {
            id: &s.id,
            matchers: &s.matchers,
            starts_at: Rfc3339(s.starts_at),
            ends_at: Rfc3339(s.end()),
            state: s.phase(now),
            comment: &s.comment,
            created_by: &s.created_by,
            created_at: Rfc3339(s.created_at),
            expired_at: s.expired_at.map(Rfc3339),
            expired_by: s.expired_by.as_deref(),
            devices,
        }
    }
}

/// Devices of `inventory` that `matchers` cover.
pub fn covered(inventory: &Inventory, matchers: &Matchers) -> usize {
    inventory
        .devices
        .iter()
        .filter(|d| matchers.covers(d.silence_names()))
        .count()
}

/// The silences not ended that the caller may see, each with the devices it covers of
/// theirs, by start.
pub fn visible<'a>(
    silences: &'a crate::maintenance::Silences,
    inventory: &Inventory,
    all_regions: bool,
    now: DateTime<Utc>,
) -> Vec<(&'a Silence, usize)> {
    let mut out: Vec<(&Silence, usize)> = silences
        .iter()
        .filter(|s| s.phase(now) != Phase::Ended)
        .map(|s| (s, covered(inventory, &s.matchers)))
        .filter(|&(_, n)| all_regions || n > 0)
        .collect();
    out.sort_by(|a, b| (a.0.starts_at, &a.0.id).cmp(&(b.0.starts_at, &b.0.id)));
    out
}

#[derive(Serialize)]
struct List<'a> {
    now: Rfc3339,
    silences: Vec<Item<'a>>,
}

/// `GET /api/v1/silences`: those pending or active.
pub fn list(ctx: &Context, req: &Request<Bytes>) -> Response<Body> {
    let view = ctx.view(req);
    let now = ctx.state.clock().now();
    let silences = ctx.state.silences();
    let items = visible(
        &silences,
        &view.snapshot.inventory,
        view.scope().is_all(),
        now,
    )
    .into_iter()
    .map(|(s, n)| Item::of(s, now, n))
    .collect();
    response::json(
        StatusCode::OK,
        &List {
            now: Rfc3339(now),
            silences: items,
        },
    )
}

/// What a request asks for, before it is checked against the inventory.
#[derive(Debug, Default, PartialEq)]
struct Ask {
    matchers: Matchers,
    starts_at: Option<String>,
    duration: Option<String>,
    ends_at: Option<String>,
    comment: String,
    /// A page's form: the device it is on, and what of it to cover.
    of: Option<String>,
    cover: Option<String>,
    back: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonBody {
    region: Option<String>,
    branch: Option<String>,
    device: Option<String>,
    kind: Option<String>,
    starts_at: Option<String>,
    duration: Option<String>,
    ends_at: Option<String>,
    #[serde(default)]
    comment: String,
}

type Refusal = (StatusCode, String);

fn bad(message: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, message.into())
}

fn parse_body(req: &Request<Bytes>) -> Result<Ask, String> {
    let body = req.body();
    let mut ask = match form::kind(req)? {
        form::Kind::Empty => Ask::default(),
        form::Kind::Json => {
            let j: JsonBody = serde_json::from_slice(body).map_err(|e| {
                format!(
                    "the body is not the JSON expected ({{\"device\": \"…\", \"duration\": \
                     \"2h\", \"comment\": \"…\"}}; also region, branch, kind, starts_at, \
                     ends_at): {e}"
                )
            })?;
            Ask {
                matchers: Matchers {
                    region: j.region,
                    branch: j.branch,
                    device: j.device,
                    kind: j.kind,
                },
                starts_at: j.starts_at,
                duration: j.duration,
                ends_at: j.ends_at,
                comment: j.comment,
                ..Ask::default()
            }
        }
        form::Kind::Form => {
            let mut ask = Ask::default();
            for (key, value) in form_urlencoded::parse(body) {
                let value = value.into_owned();
                match &*key {
                    "region" => ask.matchers.region = Some(value),
                    "branch" => ask.matchers.branch = Some(value),
                    "device" => ask.matchers.device = Some(value),
                    "kind" => ask.matchers.kind = Some(value),
                    "starts_at" => ask.starts_at = Some(value),
                    "duration" => ask.duration = Some(value),
                    "ends_at" => ask.ends_at = Some(value),
                    "comment" => ask.comment = value,
                    "of" => ask.of = Some(value),
                    "cover" => ask.cover = Some(value),
                    "back" => ask.back = Some(value),
                    // The hidden fields pages may add (a CSRF token) are the router's.
                    _ => {}
                }
            }
            ask
        }
    };
    // A form's empty field is a field not given.
    let blank = |v: &mut Option<String>| {
        if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
            *v = None;
        }
    };
    for v in [
        &mut ask.matchers.region,
        &mut ask.matchers.branch,
        &mut ask.matchers.device,
        &mut ask.matchers.kind,
        &mut ask.starts_at,
        &mut ask.duration,
        &mut ask.ends_at,
        &mut ask.of,
        &mut ask.cover,
    ] {
        blank(v);
    }
    for (name, value) in ask.matchers.pairs() {
        if value.chars().count() > MAX_MATCHER || value.chars().any(char::is_control) {
            return Err(format!(
                "{name} is not a name of the inventory (at most {MAX_MATCHER} characters, no control characters)"
            ));
        }
    }
    ask.comment = form::check_comment(&ask.comment)?;
    ask.back = ask.back.filter(|b| form::is_local_path(b));
    Ok(ask)
}

/// A page's `of` and `cover`: the matchers of that device's device, branch or region.
fn page_matchers(ask: &mut Ask, inventory: &Inventory) -> Result<(), Refusal> {
    let Some(of) = ask.of.take() else {
        return Ok(());
    };
    let Some(d) = inventory.index_of(&of).map(|i| &inventory.devices[i]) else {
        return Err((StatusCode::NOT_FOUND, format!("no device {of:?}")));
    };
    let (region, branch, device) = (
        Some(d.region.to_string()),
        Some(d.branch.to_string()),
        Some(d.name.to_string()),
    );
    ask.matchers = match ask.cover.as_deref().unwrap_or("device") {
        "device" => Matchers {
            region,
            branch,
            device,
            kind: None,
        },
        "branch" => Matchers {
            region,
            branch,
            ..Matchers::default()
        },
        "region" => Matchers {
            region,
            ..Matchers::default()
        },
        other => {
            return Err(bad(format!(
                "cover is device, branch or region, not {other:?}"
            )));
        }
    };
    Ok(())
}

fn time(name: &str, text: &str) -> Result<DateTime<Utc>, Refusal> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            bad(format!(
                "{name} {text:?} is not an RFC 3339 time (2026-12-01T22:00:00+04:00): {e}"
            ))
        })
}

/// The span asked for, checked: from now or later, for a bounded time.
fn span(ask: &Ask, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), Refusal> {
    let start = match &ask.starts_at {
        Some(t) => time("starts_at", t)?.max(now),
        None => now,
    };
    if start > now + MAX_AHEAD {
        return Err(bad(format!(
            "starts_at is more than {} days ahead",
            MAX_AHEAD.num_days()
        )));
    }
    let end = match (&ask.duration, &ask.ends_at) {
        (Some(d), None) => {
            let d = crate::config::duration::parse(d).map_err(|e| bad(format!("duration: {e}")))?;
            let d = TimeDelta::from_std(d)
                .ok()
                .filter(|d| *d <= MAX_DURATION)
                .ok_or_else(|| {
                    bad(format!(
                        "duration: at most {} days",
                        MAX_DURATION.num_days()
                    ))
                })?;
            start + d
        }
        (None, Some(t)) => time("ends_at", t)?,
        (None, None) => return Err(bad("say how long: duration (2h) or ends_at")),
        (Some(_), Some(_)) => return Err(bad("give duration or ends_at, not both")),
    };
    if end <= start {
        return Err(bad("the silence ends before it starts"));
    }
    if end - start > MAX_DURATION {
        return Err(bad(format!(
            "a silence lasts at most {} days",
            MAX_DURATION.num_days()
        )));
    }
    Ok((start, end))
}

/// The matchers checked against the inventory, for `by`: they cover some device (of
/// theirs), and a region-limited user's only theirs (the region filled in).
fn checked_matchers(
    mut matchers: Matchers,
    by: &Principal,
    inventory: &Inventory,
) -> Result<(Matchers, usize), Refusal> {
    if matchers.is_empty() {
        return Err(bad(
            "name what to silence: at least one of region, branch, device, kind",
        ));
    }
    let mut regions = inventory
        .devices
        .iter()
        .filter(|d| matchers.covers(d.silence_names()))
        .map(|d| &d.region);
    let first = regions.next();
    let refused = || {
        bad(format!(
            "{} covers no device{}",
            matchers.describe(),
            if by.scope.is_all() {
                ""
            } else {
                " of your regions"
            }
        ))
    };
    let Some(first) = first.filter(|r| by.scope.allows(r)) else {
        return Err(refused());
    };
    if !by.scope.is_all() {
        if regions.any(|r| r != first) {
            return Err(bad(format!(
                "{} covers devices of several regions: a user limited to regions names one of them (region=…)",
                matchers.describe()
            )));
        }
        matchers.region = Some(first.to_string());
    }
    let n = covered(inventory, &matchers);
    Ok((matchers, n))
}

/// `POST /api/v1/silences`, as the router runs it.
pub fn post(ctx: Arc<Context>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move {
        create(&ctx, &req).unwrap_or_else(|(status, message)| response::error(status, &message))
    })
}

fn create(ctx: &Context, req: &Request<Bytes>) -> Result<Response<Body>, Refusal> {
    let mut ask = parse_body(req).map_err(bad)?;
    let by = Principal::of(req);
    let snapshot = ctx.state.snapshot();
    let inventory = &snapshot.inventory;
    if ask.of.is_some() {
        // A page's device outside the user's regions is "not found", as on its page.
        let of = ask.of.as_deref().unwrap_or_default();
        let visible = snapshot
            .device(of)
            .is_some_and(|(d, _, _)| by.scope.allows(&d.region));
        if !visible {
            return Err((StatusCode::NOT_FOUND, format!("no device {of:?}")));
        }
    }
    page_matchers(&mut ask, inventory)?;
    if ask.comment.is_empty() {
        return Err(bad(
            "say why (comment): the next shift reads it when nothing alerts",
        ));
    }
    let now = ctx.state.clock().now();
    let (starts_at, ends_at) = span(&ask, now)?;
    let (matchers, devices) = checked_matchers(ask.matchers, &by, inventory)?;
    let silence = Silence {
        id: format!("{:032x}", rand::random::<u128>()),
        matchers,
        starts_at,
        ends_at,
        comment: ask.comment,
        created_by: by.name.to_string(),
        created_at: now,
        expired_at: None,
        expired_by: None,
    };
    ctx.state
        .add_silence(silence.clone())
        .map_err(|e| (StatusCode::TOO_MANY_REQUESTS, e.to_string()))?;
    if let Err(e) = ctx
        .store
        .actions
        .send(now, RecordKind::Silence(silence.clone()))
    {
        // Not stored: it must not cover anything either.
        let _ = ctx.state.expire_silence(&silence.id, now, &by.name);
        return Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string()));
    }
    ctx.audit(
        &by,
        "silence",
        &format!("silence {}", silence.id),
        &format!(
            "{} from {} to {} ({devices} devices): {}",
            silence.matchers.describe(),
            Rfc3339(starts_at),
            Rfc3339(ends_at),
            silence.comment
        ),
    );
    tracing::info!(id = %silence.id, matchers = %silence.matchers.describe(), by = %by.name, devices, "silence made");
    if let Some(back) = ask.back {
        return Ok(form::see_other(&back));
    }
    let shown = devices_of(ctx, req, &silence);
    Ok(response::json(
        StatusCode::CREATED,
        &Item::of(&silence, now, shown),
    ))
}

/// Devices of the caller's regions `silence` covers.
fn devices_of(ctx: &Context, req: &Request<Bytes>, silence: &Silence) -> usize {
    covered(&ctx.view(req).snapshot.inventory, &silence.matchers)
}

/// `POST /api/v1/silences/{id}/expire`, as the router runs it.
pub fn expire(ctx: Arc<Context>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move {
        end_early(&ctx, &req).unwrap_or_else(|(status, message)| response::error(status, &message))
    })
}

fn end_early(ctx: &Context, req: &Request<Bytes>) -> Result<Response<Body>, Refusal> {
    let path = req.uri().path();
    let id = path
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix("/expire"))
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| {
            (
                StatusCode::NOT_FOUND,
                format!("no such route: {path} (…/silences/{{id}}/expire)"),
            )
        })?;
    let ask = parse_body(req).map_err(bad)?;
    let by = Principal::of(req);
    // Ended silences are history (the store's), not the state's: ending one again is as
    // unknown as a made-up id.
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            format!("no pending or active silence {id}"),
        )
    };
    let silences = ctx.state.silences();
    let Some(silence) = silences.get(id) else {
        return Err(not_found());
    };
    // Another region's silence is "not found" to a region-limited user; one that covers
    // theirs and others' they may end (it is theirs too).
    if !by.scope.is_all() && devices_of(ctx, req, silence) == 0 {
        return Err(not_found());
    }
    let now = ctx.state.clock().now();
    match ctx.state.expire_silence(id, now, &by.name) {
        Ok(()) => {}
        Err(Refused::Unknown(_)) => return Err(not_found()),
        Err(e) => return Err((StatusCode::CONFLICT, e.to_string())),
    }
    let kind = RecordKind::SilenceExpired {
        id: id.to_string(),
        by: by.name.to_string(),
    };
    if let Err(e) = ctx.store.actions.send(now, kind) {
        return Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string()));
    }
    ctx.audit(
        &by,
        "silence_expire",
        &format!("silence {id}"),
        &silence.matchers.describe(),
    );
    if let Some(back) = ask.back {
        return Ok(form::see_other(&back));
    }
    let mut ended = silence.clone();
    ended.expired_at = Some(now);
    ended.expired_by = Some(by.name.to_string());
    let shown = devices_of(ctx, req, &ended);
    Ok(response::json(
        StatusCode::OK,
        &Item::of(&ended, now, shown),
    ))
}

#[cfg(test)]
mod tests {
    use hyper::header;

    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn req(content_type: &str, body: &str) -> Request<Bytes> {
        Request::post(PATH)
            .header(header::CONTENT_TYPE, content_type)
            .body(Bytes::from(body.to_string()))
            .unwrap()
    }

    fn ask(duration: Option<&str>, starts: Option<&str>, ends: Option<&str>) -> Ask {
        Ask {
            duration: duration.map(Into::into),
            starts_at: starts.map(Into::into),
            ends_at: ends.map(Into::into),
            ..Ask::default()
        }
    }

    #[test]
    fn json_and_form_bodies_say_the_same() {
        let j = parse_body(&req(
            "application/json",
            r#"{"region":"west","device":"atm-1","duration":"2h","comment":" UPS "}"#,
        ))
        .unwrap();
        let f = parse_body(&req(
            "application/x-www-form-urlencoded",
            "region=west&branch=&device=atm-1&duration=2h&comment=+UPS+&csrf_token=x",
        ))
        .unwrap();
        assert_eq!(j, f);
        assert_eq!(j.matchers.describe(), "region=west device=atm-1");
        assert_eq!(j.comment, "UPS");
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        for (ct, body, says) in [
            ("application/json", r#"{"regoin":"w"}"#, "not the JSON"),
            ("application/json", r#"{"device":"a\u0000b"}"#, "control"),
            ("text/plain", "x", "unsupported"),
        ] {
            let e = parse_body(&req(ct, body)).unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
    }

    #[test]
    fn a_span_starts_no_earlier_than_now_and_is_bounded() {
        let now = t("2026-12-01T10:00:00Z");
        assert_eq!(
            span(&ask(Some("90m"), None, None), now),
            Ok((now, t("2026-12-01T11:30:00Z")))
        );
        // In the past: from now (a silence does not rewrite what was seen).
        assert_eq!(
            span(&ask(Some("1h"), Some("2026-12-01T08:00:00Z"), None), now),
            Ok((now, t("2026-12-01T11:00:00Z")))
        );
        assert_eq!(
            span(
                &ask(
                    None,
                    Some("2026-12-01T22:00:00+04:00"),
                    Some("2026-12-02T02:00:00+04:00")
                ),
                now
            ),
            Ok((t("2026-12-01T18:00:00Z"), t("2026-12-01T22:00:00Z")))
        );
        for (a, says) in [
            (ask(None, None, None), "how long"),
            (
                ask(Some("1h"), None, Some("2026-12-01T12:00:00Z")),
                "not both",
            ),
            (ask(Some("1x"), None, None), "duration"),
            (ask(Some("745h"), None, None), "at most 31 days"),
            (ask(None, None, Some("2026-12-01T09:00:00Z")), "ends before"),
            (
                ask(
                    None,
                    Some("2027-02-01T00:00:00Z"),
                    Some("2027-02-02T00:00:00Z"),
                ),
                "ahead",
            ),
            (ask(None, Some("tomorrow"), None), "RFC 3339"),
        ] {
            let (status, e) = span(&a, now).unwrap_err();
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(e.contains(says), "{a:?}: {e}");
        }
    }
}
