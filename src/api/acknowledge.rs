//! `POST /api/v1/alerts/{id}/ack` and `POST /api/v1/alerts/{id}/unack` (operator): an
//! operator says they are on it, with a comment, or takes that back.
//!
//! The body is JSON (`{"comment": "…"}`) or a form (`comment=…`); the comment is at most
//! [`MAX_COMMENT`] characters, trimmed, without control characters other than newline
//! and tab. A form that also sends `back` (a path of this appliance, e.g. `/alerts`) is
//! answered with a 303 to it, as a page's button wants; everything else with JSON.
//!
//! The handler checks that the alert is open — in the writer's memory of the open alerts,
//! as of its last commit; the database only for one it does not know open (404 for an
//! unknown id, 409 for a resolved one) — then hands the acknowledgement to the store
//! writer, which applies it in order with everything else (and keeps it in its spool
//! while the database is away: an open alert can be acknowledged during an outage).
//! The answer is `202 Accepted`: the writer commits it a moment later and the live feed
//! then carries it to every open page as `alert_updated`. If the alert resolves between
//! the check and the commit, the acknowledgement is a no-op there: it never sticks to a
//! resolved alert, and a re-opened outage is a new, unacknowledged alert.

use std::sync::Arc;

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::{form, store_error};
use crate::access::Principal;
use crate::context::Context;
use crate::http::BoxFuture;
use crate::http::response::{self, Body};
use crate::read_model::Rfc3339;
use crate::store::{AlertChange, RecordKind, Store as _};

/// The routes' prefix; the rest is `{id}/ack` or `{id}/unack`.
pub const PREFIX: &str = "/api/v1/alerts/";

pub use super::form::MAX_COMMENT;

/// What the path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Ack,
    Unack,
}

impl Act {
    fn action(self) -> &'static str {
        match self {
            Act::Ack => "ack",
            Act::Unack => "unack",
        }
    }
}

/// What the body says.
#[derive(Debug, Default, PartialEq)]
struct Form {
    comment: String,
    /// Where a page's form wants to go back to (303).
    back: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonBody {
    #[serde(default)]
    comment: String,
}

#[derive(Serialize)]
struct Accepted<'a> {
    id: i64,
    action: &'static str,
    acknowledged_by: Option<&'a str>,
    acknowledged_at: Option<Rfc3339>,
    acknowledged_comment: Option<&'a str>,
    /// Always true: committed by the store writer a moment later, then in the live feed.
    pending: bool,
}

/// `POST /api/v1/alerts/{id}/ack|unack`, as the router runs it.
pub fn post(ctx: Arc<Context>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move { handle(&ctx, &req).await })
}

async fn handle(ctx: &Context, req: &Request<Bytes>) -> Response<Body> {
    let (id, act) = match parse_path(req.uri().path()) {
        Ok(v) => v,
        Err(message) => return response::error(StatusCode::NOT_FOUND, &message),
    };
    let form = match parse_body(req) {
        Ok(f) => f,
        Err(message) => return response::error(StatusCode::BAD_REQUEST, &message),
    };
    if act == Act::Unack && !form.comment.is_empty() {
        return response::error(
            StatusCode::BAD_REQUEST,
            "an un-acknowledgement takes no comment",
        );
    }
    let by = Principal::of(req);
    let device = match open_alert(ctx, id, act).await {
        Ok(device) => device,
        Err(response) => return response,
    };
    if !visible(ctx, &by, &device) {
        return response::error(StatusCode::NOT_FOUND, &format!("no alert {id}"));
    }
    let acknowledged = ctx
        .store
        .health
        .acknowledged
        .of_device(&device)
        .iter()
        .any(|a| a.alert == id);
    if act == Act::Unack && !acknowledged {
        return response::error(
            StatusCode::CONFLICT,
            &format!("alert {id} is not acknowledged"),
        );
    }
    let at = ctx.state.clock().now();
    let kind = match act {
        Act::Ack => RecordKind::Acknowledge {
            alert: id,
            by: by.name.to_string(),
            comment: form.comment.clone(),
        },
        Act::Unack => RecordKind::Unacknowledge {
            alert: id,
            by: by.name.to_string(),
        },
    };
    if let Err(e) = ctx.store.actions.send(at, kind) {
        return response::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    }
    let target = format!("alert {id} ({device})");
    ctx.audit(&by, act.action(), &target, &form.comment);
    if let Some(back) = form.back {
        return form::see_other(&back);
    }
    let acked = act == Act::Ack;
    response::json(
        StatusCode::ACCEPTED,
        &Accepted {
            id,
            action: act.action(),
            acknowledged_by: acked.then_some(&*by.name),
            acknowledged_at: acked.then_some(Rfc3339(at)),
            acknowledged_comment: Some(form.comment.as_str()).filter(|c| acked && !c.is_empty()),
            pending: true,
        },
    )
}

/// The device of open alert `id`, or the answer that says why there is none. The
/// writer's memory of the open alerts answers first, without a query (so an alert can
/// be acknowledged while the database is away: the record waits in the spool); the
/// database is asked only for an alert the writer does not know open, to tell an
/// unknown alert (404) from a resolved one (409).
async fn open_alert(ctx: &Context, id: i64, act: Act) -> Result<String, Response<Body>> {
    if let Some(device) = ctx.store.health.open_alert_device(id) {
        return Ok(device);
    }
    let event = match ctx.store.db.alert_events(&[id]).await {
        Ok(events) => events.into_iter().next(),
        Err(e) => return Err(store_error(e)),
    };
    match event {
        None => Err(response::error(
            StatusCode::NOT_FOUND,
            &format!("no alert {id}"),
        )),
        Some(e) if e.change == AlertChange::Resolved => Err(response::error(
            StatusCode::CONFLICT,
            &format!(
                "alert {id} is resolved: only an open alert can be {}",
                match act {
                    Act::Ack => "acknowledged",
                    Act::Unack => "un-acknowledged",
                }
            ),
        )),
        // Open, committed after the writer last told (a moment ago).
        Some(e) => Ok(e.alert.device),
    }
}

/// A principal limited to some regions acts only on their devices' alerts; others' are
/// "not found", as their devices are.
fn visible(ctx: &Context, by: &Principal, device: &str) -> bool {
    by.scope.is_all()
        || ctx
            .state
            .snapshot()
            .device(device)
            .is_some_and(|(d, _, _)| by.scope.allows(&d.region))
}

/// `/api/v1/alerts/17/ack` → (17, ack).
fn parse_path(path: &str) -> Result<(i64, Act), String> {
    let rest = path.strip_prefix(PREFIX).unwrap_or("");
    let (id, act) = rest
        .split_once('/')
        .ok_or_else(|| format!("no such route: {path}"))?;
    let act = match act {
        "ack" => Act::Ack,
        "unack" => Act::Unack,
        _ => return Err(format!("no such route: {path} (…/ack or …/unack)")),
    };
    let id = id
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| format!("no alert {id:?}: an alert id is a positive integer"))?;
    Ok((id, act))
}

fn parse_body(req: &Request<Bytes>) -> Result<Form, String> {
    let body = req.body();
    let mut form = match form::kind(req)? {
        form::Kind::Empty => Form::default(),
        form::Kind::Json => {
            // `null` is an empty body, as some clients send for "no fields".
            let json: Option<JsonBody> = serde_json::from_slice(body).map_err(|e| {
                format!("the body is not the JSON expected ({{\"comment\": \"…\"}}): {e}")
            })?;
            Form {
                comment: json.map(|j| j.comment).unwrap_or_default(),
                back: None,
            }
        }
        form::Kind::Form => {
            let mut form = Form::default();
            for (key, value) in form_urlencoded::parse(body) {
                match &*key {
                    "comment" => form.comment = value.into_owned(),
                    "back" => form.back = Some(value.into_owned()),
                    // The hidden fields pages may add (a CSRF token) are the router's.
                    _ => {}
                }
            }
            form
        }
    };
    form.comment = form::check_comment(&form.comment)?;
    form.back = form.back.filter(|b| form::is_local_path(b));
    Ok(form)
}

#[cfg(test)]
mod tests {
    use hyper::header;

    use super::*;

    fn req(content_type: &str, body: &str) -> Request<Bytes> {
        Request::post("/api/v1/alerts/1/ack")
            .header(header::CONTENT_TYPE, content_type)
            .body(Bytes::from(body.to_string()))
            .unwrap()
    }

    #[test]
    fn paths_name_an_alert_and_an_action() {
        assert_eq!(parse_path("/api/v1/alerts/17/ack"), Ok((17, Act::Ack)));
        assert_eq!(parse_path("/api/v1/alerts/17/unack"), Ok((17, Act::Unack)));
        for bad in [
            "/api/v1/alerts/17",
            "/api/v1/alerts/17/close",
            "/api/v1/alerts/x/ack",
            "/api/v1/alerts/0/ack",
            "/api/v1/alerts/-3/ack",
            "/api/v1/alerts/99999999999999999999/ack",
        ] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_and_form_bodies_carry_the_comment() {
        let f = parse_body(&req("application/json", r#"{"comment":" on it "}"#)).unwrap();
        assert_eq!(f.comment, "on it");
        for empty in ["{}", "null"] {
            assert_eq!(
                parse_body(&req("application/json", empty)).unwrap(),
                Form::default()
            );
        }
        let f = parse_body(&req(
            "application/x-www-form-urlencoded; charset=UTF-8",
            "comment=line+down%3C%2Fb%3E&back=%2Falerts%3Fstatus%3Dactive&csrf=x",
        ))
        .unwrap();
        assert_eq!(f.comment, "line down</b>");
        assert_eq!(f.back.as_deref(), Some("/alerts?status=active"));
        assert_eq!(parse_body(&req("", "")).unwrap(), Form::default());
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        let long = format!("comment={}", "x".repeat(MAX_COMMENT + 1));
        for (ct, body, says) in [
            (
                "application/x-www-form-urlencoded",
                long.as_str(),
                "at most 500",
            ),
            ("application/json", r#"{"comment": 5}"#, "not the JSON"),
            ("application/json", r#"{"coment": "x"}"#, "not the JSON"),
            ("text/plain", "hello", "unsupported content type"),
            (
                "application/x-www-form-urlencoded",
                "comment=a%00b",
                "control",
            ),
        ] {
            let e = parse_body(&req(ct, body)).unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
        // Exactly the limit, in characters (not bytes), is kept.
        let ok = format!("comment={}", "ä".repeat(MAX_COMMENT));
        assert!(parse_body(&req("application/x-www-form-urlencoded", &ok)).is_ok());
    }
}
