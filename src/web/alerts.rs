//! `GET /alerts`: open alerts (severity, device, since) and recently resolved ones, read
//! from the store (the alert truth lives there: opened and resolved in the same
//! transaction as the state change). Filters: `severity`, `device`.

use bytes::Bytes;
use hyper::{Request, Response};
use minijinja::context;
use serde::Serialize;

use super::Pages;
use super::view::{self, device_url};
use crate::http::Body;
use crate::read_model::{Rfc3339, UnreachableBehind};
use crate::state::Snapshot;
use crate::store::{AlertQuery, AlertRow, Store as _};

/// Resolved alerts listed.
pub const RESOLVED_LISTED: i64 = 50;
/// Open alerts listed (they are rare; a flood is a bigger problem than this page).
pub const OPEN_LISTED: i64 = 500;

#[derive(Debug, Serialize)]
pub struct AlertView {
    pub id: i64,
    pub device: String,
    pub device_url: String,
    pub condition: String,
    pub severity: String,
    pub message: String,
    pub opened_at: String,
    pub resolved_at: Option<String>,
    /// Open `device_down` alerts: devices unreachable behind this one now.
    pub unreachable_behind: Option<usize>,
    #[serde(skip)]
    resolved: bool,
}

impl From<AlertRow> for AlertView {
    fn from(a: AlertRow) -> Self {
        AlertView {
            id: a.id,
            device_url: device_url(&a.device),
            device: a.device,
            condition: a.condition,
            severity: a.severity,
            message: a.message,
            opened_at: Rfc3339(a.opened_at).to_string(),
            resolved: a.resolved_at.is_some(),
            resolved_at: a.resolved_at.map(|t| Rfc3339(t).to_string()),
            unreachable_behind: None,
        }
    }
}

/// Sets `unreachable_behind` on the open `device_down` alerts among `alerts`, counted in
/// `snapshot` (the one the page renders).
pub fn count_behind(alerts: &mut [AlertView], snapshot: &Snapshot) {
    let mut behind = UnreachableBehind::new(snapshot);
    for a in alerts {
        if !a.resolved && a.condition == "device_down" {
            a.unreachable_behind = behind.of_name(&a.device);
        }
    }
}

/// Up to `limit` open alerts, whether there are more, and how many are open: the
/// count both the dashboard and this page show, read from the store in the same read
/// (a `count(*)` of the open ones, not the length of a capped list, which is why the
/// two pages once disagreed during an outage).
pub fn open_alerts(web: &Pages, limit: i64) -> Result<(Vec<AlertView>, bool, usize), String> {
    let q = AlertQuery {
        active: Some(true),
        limit: limit + 1,
        ..AlertQuery::default()
    };
    let (rows, total) = view::store_read(web, async |db| {
        Ok((db.alerts(&q).await?, open_total(db).await?))
    })?;
    let more = rows.len() as i64 > limit;
    Ok((
        rows.into_iter()
            .take(limit as usize)
            .map(AlertView::from)
            .collect(),
        more,
        total,
    ))
}

/// How many alerts are open, over every device.
async fn open_total(db: &crate::store::Db) -> crate::store::Result<usize> {
    Ok(db
        .open_alert_counts()
        .await?
        .values()
        .map(|&n| n as usize)
        .sum())
}

/// `GET /alerts`
pub fn get(web: &Pages, req: &Request<Bytes>) -> Response<Body> {
    let ctx = &web.ctx;
    let mut severity = None;
    let mut device = None;
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        let v = Some(v.into_owned()).filter(|v| !v.is_empty());
        match &*k {
            "severity" => severity = v,
            "device" => device = v,
            _ => {}
        }
    }
    let base = AlertQuery {
        device: device.clone(),
        severity: severity.clone(),
        ..AlertQuery::default()
    };
    let open_q = AlertQuery {
        active: Some(true),
        limit: OPEN_LISTED,
        ..base.clone()
    };
    let resolved_q = AlertQuery {
        active: Some(false),
        limit: RESOLVED_LISTED,
        ..base
    };
    let read = view::store_read(web, async |db| {
        Ok((
            db.alerts(&open_q).await?,
            db.alerts(&resolved_q).await?,
            open_total(db).await?,
        ))
    });
    let (open, resolved, open_total, error) = match read {
        Ok((o, r, n)) => (o, r, n, None),
        Err(e) => (Vec::new(), Vec::new(), 0, Some(e)),
    };
    let snapshot = ctx.state.snapshot();
    let now = ctx.state.clock().now();
    let mut open: Vec<AlertView> = open.into_iter().map(AlertView::from).collect();
    count_behind(&mut open, &snapshot);
    view::page(
        web,
        "alerts",
        &snapshot,
        now,
        view::events_url(None, None, None),
        context! {
            open => view::v(open),
            open_total,
            resolved => view::v(resolved.into_iter().map(AlertView::from).collect::<Vec<_>>()),
            error,
            filter => context! { severity, device },
        },
    )
}
