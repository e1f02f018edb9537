//! `GET /api/v1/devices/{name}/transitions`: a device's stored status changes, newest
//! first (by `at`, then id), paged with `limit` (default 100, at most 1000) and `before`
//! (the `next_before` of the previous page, see [`crate::read_model::paging`]).
//!
//! History outlives the inventory: a device removed from it is still answered for, from
//! the store. Only a name that was never in the inventory is a 404. Which paths reach
//! this route rather than the device itself is [`super::devices::device`]'s rule.

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use super::store_error;
use crate::context::Context;
use crate::http::response::{self, Body};
use crate::read_model::paging::{self, Cursor};
use crate::read_model::{ParamError, Rfc3339};
use crate::store::{Store as _, TransitionRow};

/// The path suffix that asks for a device's history.
pub const SUFFIX: &str = "/transitions";

/// `limit` and `before` of this route.
#[derive(Debug, PartialEq)]
pub struct Query {
    pub limit: i64,
    pub before: Option<Cursor>,
}

impl Query {
    pub fn parse(query: Option<&str>) -> Result<Query, ParamError> {
        let mut q = Query {
            limit: paging::DEFAULT_LIMIT,
            before: None,
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.trim();
            match &*key {
                "limit" if !value.is_empty() => q.limit = paging::limit(value)?,
                "before" if !value.is_empty() => q.before = Some(Cursor::parse(value)?),
                _ => {}
            }
        }
        Ok(q)
    }
}

/// The history of `device` (already percent-decoded).
pub async fn get(ctx: &Context, device: &str, req: &Request<Bytes>) -> Response<Body> {
    let query = match Query::parse(req.uri().query()) {
        Ok(q) => q,
        Err((parameter, message)) => return response::bad_parameter(parameter, &message),
    };
    let store = &ctx.store;
    let scope = crate::access::Principal::of(req).scope;
    if !scope.is_all() {
        // A device of another region, now or (removed) in the past, is not there.
        let region = match ctx.state.snapshot().inventory.device(device) {
            Some(d) => Some(d.region.to_string()),
            None => match store.db.device_region(device).await {
                Ok(r) => r,
                Err(e) => return store_error(e),
            },
        };
        if !region.is_some_and(|r| scope.allows(&r)) {
            return response::error(
                StatusCode::NOT_FOUND,
                &format!("no device named {device:?}, now or in the past"),
            );
        }
    }
    // A bare time excludes everything at that instant: id 0 is below every row's.
    let before = query.before.map(|c| (c.at, c.id.unwrap_or(0)));
    let rows = match store
        .db
        .transitions_before(device, query.limit + 1, before)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return store_error(e),
    };
    // A device in the inventory exists even before the writer has recorded it; any
    // other name must be one the store has seen (a removed device keeps its history).
    if rows.is_empty() && ctx.state.snapshot().device(device).is_none() {
        match store.db.device_known(device).await {
            Ok(true) => {}
            Ok(false) => {
                return response::error(
                    StatusCode::NOT_FOUND,
                    &format!("no device named {device:?}, now or in the past"),
                );
            }
            Err(e) => return store_error(e),
        }
    }
    let (rows, next_before) = paging::paginate(rows, query.limit, |t| (t.at, t.id));
    response::json(
        StatusCode::OK,
        &Page {
            device,
            transitions: rows.iter().map(TransitionJson::from).collect(),
            next_before,
        },
    )
}

#[derive(Serialize)]
struct Page<'a> {
    device: &'a str,
    transitions: Vec<TransitionJson<'a>>,
    /// `before` for the next page; null on the last one.
    next_before: Option<String>,
}

#[derive(Serialize)]
struct TransitionJson<'a> {
    from: &'a str,
    to: &'a str,
    at: Rfc3339,
    down_since: Option<Rfc3339>,
    /// The appliance's `state_version` when the change was made; it restarts with each
    /// boot, so it orders changes within one run only.
    state_version: i64,
    /// Decided inside a maintenance window of the device.
    in_maintenance: bool,
}

impl<'a> From<&'a TransitionRow> for TransitionJson<'a> {
    fn from(t: &'a TransitionRow) -> Self {
        Self {
            from: &t.from,
            to: &t.to,
            at: Rfc3339(t.at),
            down_since: t.down_since.map(Rfc3339),
            state_version: t.state_version,
            in_maintenance: t.in_maintenance,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paging_and_ignores_the_rest() {
        let q = Query::parse(Some("limit=3&before=2027-01-15T08:00:00Z&x=1")).unwrap();
        assert_eq!(q.limit, 3);
        assert_eq!(q.before.unwrap().id, None);
        assert_eq!(
            Query::parse(None).unwrap(),
            Query {
                limit: 100,
                before: None
            }
        );
        assert_eq!(Query::parse(Some("limit=x")).unwrap_err().0, "limit");
        assert_eq!(Query::parse(Some("before=1_2")).unwrap_err().0, "before");
    }
}
