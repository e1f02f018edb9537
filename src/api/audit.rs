//! `GET /api/v1/audit` (admin): the audit log, every write someone made (login, ack,
//! silence, probe now, reload) with who, from where, when and what; newest first.
//!
//! Parameters: `user`, `action` (exact), `limit` (default 100, at most 1000) and `before`
//! (the `next_before` of the previous page, see [`crate::read_model::paging`]). Entries
//! are kept as long as the store's `retention`.

use std::sync::Arc;

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use super::store_error;
use crate::context::Context;
use crate::http::BoxFuture;
use crate::http::response::{self, Body};
use crate::read_model::paging::{self, Cursor};
use crate::read_model::{ParamError, Rfc3339};
use crate::store::{AuditQuery, AuditRow, Store as _};

/// Longest `user` or `action` filter: no name is longer, and a longer one is a mistake.
const MAX_FILTER: usize = 200;

/// `GET /api/v1/audit`, as the router runs it.
pub fn route(ctx: Arc<Context>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move { get(&ctx, &req).await })
}

pub async fn get(ctx: &Context, req: &Request<Bytes>) -> Response<Body> {
    // Entries name devices, alerts and users of every region: a scoped admin is refused
    // rather than shown a part (as for notifications).
    if !crate::access::Principal::of(req).scope.is_all() {
        return response::error(
            StatusCode::FORBIDDEN,
            "the audit log spans every region; a region-scoped user cannot read it",
        );
    }
    let mut query = match parse(req.uri().query()) {
        Ok(q) => q,
        Err((parameter, message)) => return response::bad_parameter(parameter, &message),
    };
    let limit = query.limit;
    query.limit += 1;
    let rows = match ctx.store.db.audit(&query).await {
        Ok(rows) => rows,
        Err(e) => return store_error(e),
    };
    let (rows, next_before) = paging::paginate(rows, limit, |r| (r.at, r.id));
    response::json(
        StatusCode::OK,
        &Page {
            entries: rows.iter().map(Entry::of).collect(),
            next_before,
        },
    )
}

pub fn parse(query: Option<&str>) -> Result<AuditQuery, ParamError> {
    let mut q = AuditQuery {
        limit: paging::DEFAULT_LIMIT,
        ..AuditQuery::default()
    };
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let text = Some(value.trim().to_string()).filter(|v| !v.is_empty());
        match &*key {
            "user" | "action" => {
                let name = if &*key == "user" { "user" } else { "action" };
                if text.as_ref().is_some_and(|t| t.len() > MAX_FILTER) {
                    return Err((name, format!("{name} is longer than {MAX_FILTER} bytes")));
                }
                if name == "user" {
                    q.user = text;
                } else {
                    q.action = text;
                }
            }
            "limit" if text.is_some() => q.limit = paging::limit(&value)?,
            "before" if text.is_some() => {
                let cursor = Cursor::parse(value.trim())?;
                // A bare time: everything at it is excluded (no id is below 0).
                q.before = Some((cursor.at, cursor.id.unwrap_or(0)));
            }
            _ => {}
        }
    }
    Ok(q)
}

#[derive(Serialize)]
struct Page<'a> {
    entries: Vec<Entry<'a>>,
    /// `before` for the next page; null on the last one.
    next_before: Option<String>,
}

#[derive(Serialize)]
struct Entry<'a> {
    id: i64,
    at: Rfc3339,
    user: &'a str,
    via: &'a str,
    address: &'a str,
    action: &'a str,
    target: &'a str,
    detail: &'a str,
}

impl<'a> Entry<'a> {
    fn of(r: &'a AuditRow) -> Entry<'a> {
        Entry {
            id: r.id,
            at: Rfc3339(r.at),
            user: &r.entry.user,
            via: &r.entry.via,
            address: &r.entry.address,
            action: &r.entry.action,
            target: &r.entry.target,
            detail: &r.entry.detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_map_onto_the_store_query() {
        let q = parse(Some(
            "user=ana&action=ack&limit=5&before=2027-01-15T08:00:00.000001Z_7",
        ))
        .unwrap();
        assert_eq!(q.user.as_deref(), Some("ana"));
        assert_eq!(q.action.as_deref(), Some("ack"));
        assert_eq!(q.limit, 5);
        let at = chrono::DateTime::from_timestamp_micros(1_800_000_000_000_001).unwrap();
        assert_eq!(q.before, Some((at, 7)));
        let q = parse(Some("user=&action=&limit=&before=")).unwrap();
        assert_eq!(q.limit, paging::DEFAULT_LIMIT);
        assert!(q.user.is_none() && q.action.is_none() && q.before.is_none());
    }

    #[test]
    fn bad_values_name_their_parameter() {
        let long = format!("user={}", "u".repeat(MAX_FILTER + 1));
        for (query, parameter) in [
            ("limit=0", "limit"),
            ("before=yesterday", "before"),
            (long.as_str(), "user"),
        ] {
            assert_eq!(parse(Some(query)).unwrap_err().0, parameter, "{query}");
        }
    }
}
