//! `GET /api/v1/alerts`: stored alerts, newest first (by `opened_at`, then id).
//!
//! Parameters: `status` (`active` or `resolved`; empty or absent: both), `device`,
//! `severity` (`critical`, `warning`, `info`), `limit` (default 100, at most 1000) and
//! `before` (the `next_before` of the previous page, see [`crate::read_model::paging`]). Values
//! are checked strictly: a typo is a 400 naming the parameter, not an empty list.
//!
//! Alerts live in the database, not in [`crate::state::State`], so this answer carries no
//! `state_version`; while the store is degraded it lags the live status by the spooled
//! writes. An open `device_down` alert carries `unreachable_behind`, the devices
//! unreachable behind its device now, counted from the current snapshot
//! ([`UnreachableBehind`]): current at every read, never stored.

use std::sync::Arc;

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use super::store_error;
use crate::context::Context;
use crate::http::BoxFuture;
use crate::http::response::{self, Body};
use crate::read_model::paging::{self, Cursor};
use crate::read_model::{ParamError, Rfc3339, UnreachableBehind};
use crate::store::{AlertQuery, AlertRow, Store as _};

/// Severities the schema allows.
const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];

/// `GET /api/v1/alerts`, as the router runs it.
pub fn route(ctx: Arc<Context>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move { get(&ctx, &req).await })
}

/// `GET /api/v1/alerts`
pub async fn get(ctx: &Context, req: &Request<Bytes>) -> Response<Body> {
    let mut query = match parse(req.uri().query()) {
        Ok(q) => q,
        Err((parameter, message)) => return response::bad_parameter(parameter, &message),
    };
    let store = &ctx.store;
    let limit = query.limit;
    query.limit += 1;
    let rows = match store.db.alerts(&query).await {
        Ok(rows) => rows,
        Err(e) => return store_error(e),
    };
    let (rows, next_before) = paging::paginate(rows, limit, |a| (a.opened_at, a.id));
    let snapshot = ctx.state.snapshot();
    let mut behind = UnreachableBehind::new(&snapshot);
    response::json(
        StatusCode::OK,
        &Page {
            alerts: rows
                .iter()
                .map(|a| AlertJson::new(a, unreachable_behind(a, &mut behind)))
                .collect(),
            next_before,
        },
    )
}

/// For an open `device_down` alert of a device in the inventory, the devices unreachable
/// behind it now.
pub fn unreachable_behind(a: &AlertRow, behind: &mut UnreachableBehind) -> Option<usize> {
    let open_down = a.resolved_at.is_none() && a.condition == "device_down";
    open_down.then(|| behind.of_name(&a.device)).flatten()
}

/// The store query the parameters ask for (`limit` is the page size).
pub fn parse(query: Option<&str>) -> Result<AlertQuery, ParamError> {
    let mut q = AlertQuery {
        limit: paging::DEFAULT_LIMIT,
        ..AlertQuery::default()
    };
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        // An empty value means "no filter", as an HTML form with an empty field sends.
        let text = Some(value.trim().to_string()).filter(|v| !v.is_empty());
        match &*key {
            "status" => {
                q.active = match text.as_deref() {
                    None => None,
                    Some("active") => Some(true),
                    Some("resolved") => Some(false),
                    Some(other) => {
                        return Err((
                            "status",
                            format!("status {other:?} is not one of active, resolved"),
                        ));
                    }
                }
            }
            "device" => q.device = text,
            "severity" => {
                if let Some(s) = text.as_deref().filter(|s| !SEVERITIES.contains(s)) {
                    return Err((
                        "severity",
                        format!("severity {s:?} is not one of {}", SEVERITIES.join(", ")),
                    ));
                }
                q.severity = text;
            }
            "limit" if text.is_some() => q.limit = paging::limit(&value)?,
            "before" if text.is_some() => {
                let cursor = Cursor::parse(value.trim())?;
                q.before = Some(cursor.at);
                q.before_id = cursor.id;
            }
            _ => {}
        }
    }
    Ok(q)
}

#[derive(Serialize)]
struct Page<'a> {
    alerts: Vec<AlertJson<'a>>,
    /// `before` for the next page; null on the last one.
    next_before: Option<String>,
}

#[derive(Serialize)]
struct AlertJson<'a> {
    id: i64,
    device: &'a str,
    condition: &'a str,
    severity: &'a str,
    message: &'a str,
    opened_at: Rfc3339,
    resolved_at: Option<Rfc3339>,
    resolution: Option<&'a str>,
    acknowledged_at: Option<Rfc3339>,
    acknowledged_by: Option<&'a str>,
    acknowledged_comment: Option<&'a str>,
    /// Open `device_down` alerts only.
    #[serde(skip_serializing_if = "Option::is_none")]
    unreachable_behind: Option<usize>,
}

impl<'a> AlertJson<'a> {
    fn new(a: &'a AlertRow, unreachable_behind: Option<usize>) -> Self {
        Self {
            id: a.id,
            device: &a.device,
            condition: &a.condition,
            severity: &a.severity,
            message: &a.message,
            opened_at: Rfc3339(a.opened_at),
            resolved_at: a.resolved_at.map(Rfc3339),
            resolution: a.resolution.as_deref(),
            acknowledged_at: a.acknowledged_at.map(Rfc3339),
            acknowledged_by: a.acknowledged_by.as_deref(),
            acknowledged_comment: a.acknowledged_comment.as_deref(),
            unreachable_behind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_map_onto_the_store_query() {
        let q = parse(Some(
            "status=resolved&device=a%2Fb&severity=critical&limit=5\
             &before=2027-01-15T08:00:00.000001Z_7&_=1",
        ))
        .unwrap();
        assert_eq!(q.active, Some(false));
        assert_eq!(q.device.as_deref(), Some("a/b"));
        assert_eq!(q.severity.as_deref(), Some("critical"));
        assert_eq!(q.limit, 5);
        assert_eq!(
            q.before,
            chrono::DateTime::from_timestamp_micros(1_800_000_000_000_001)
        );
        assert_eq!(q.before_id, Some(7));
    }

    #[test]
    fn empty_values_do_not_filter() {
        let q = parse(Some("status=&device=&severity=&limit=&before=")).unwrap();
        assert_eq!(
            q,
            AlertQuery {
                limit: paging::DEFAULT_LIMIT,
                ..AlertQuery::default()
            }
        );
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (query, parameter) in [
            ("status=open", "status"),
            ("severity=major", "severity"),
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("before=yesterday", "before"),
        ] {
            assert_eq!(parse(Some(query)).unwrap_err().0, parameter, "{query}");
        }
    }
}
