//! The web pages. Server-rendered from one snapshot each (minijinja templates built into
//! the binary, autoescaped), useful without JavaScript; one small hand-written script
//! subscribes to the live feed (`GET /api/v1/events`, [`crate::api::events`]) and
//! updates pages in place.
//!
//! Routes (GET and HEAD):
//! - `/` — dashboard: totals, devices down now, by region and kind, open alerts, prober
//!   health, last inventory reload.
//! - `/monitor` — the NOC wall: down first, longest down first; filters `status`, `region`,
//!   `branch`, `kind`, `q` ([`crate::read_model::ListQuery`]); `sort`, `dir` (the table's
//!   headers); `view=grid|table`; `page` (of [`monitor::PAGE_SIZE`]).
//! - `/devices/{name}` — one device: hierarchy, labels, history over `range`
//!   (`1h`, `6h`, `24h`, `7d`, `30d`: RTT and loss from VictoriaMetrics or the hour in
//!   memory, outages and availability), transitions and alerts from the store, vmui link.
//! - `/alerts` — open alerts grouped by branch ([`alert_groups`]), 50 branches a page,
//!   and resolved ones paged by cursor; filters `severity`, `device`, `region`, `branch`;
//!   `sort` (`worst`, `longest`, `most`, `place`), `page`, `before`.
//! - `/infrastructure` — regions → branches with counts, worst first; a map from lat/lon.
//! - `/wall` — the 4K wall: headline counts, the outage summary, every device as a
//!   small tile grouped by region and branch, a clock in `web.display_zone`.
//! - `/reports` — the availability report ([`reports`]): period, grouping, sort,
//!   drill-down region → branch → device → its outages; breaches flagged; printable.
//! - `/static/app.js`, `/static/app.css`, `/static/wall.js`, `/static/filters.js` — the scripts
//!   and the style sheet.
//!
//! Layout: [`templates`] the environment, [`view`] what pages share, [`outage`] the
//! outage summary and the recently-recovered list (dashboard and monitor), one file per page,
//! [`chart`] the SVG drawings, [`history`] the device page's history panel, [`assets`] the
//! static files.

pub mod alert_groups;
pub mod alerts;
pub mod assets;
pub mod chart;
pub mod dashboard;
pub mod device;
pub mod history;
pub mod infrastructure;
pub mod login;
pub mod login_oidc;
pub mod monitor;
pub mod outage;
pub mod reports;
pub mod templates;
pub mod view;
pub mod wall;

use std::sync::Arc;

use crate::context::Context;
use crate::http::route::{Route, Run, Wait};

/// What the pages read: the appliance's context and the compiled templates.
pub struct Pages {
    pub ctx: Arc<Context>,
    pub templates: templates::Templates,
}

impl Pages {
    pub fn new(ctx: Arc<Context>) -> Pages {
        Pages {
            ctx,
            templates: templates::Templates::new(),
        }
    }
}

/// The pages' route table.
pub fn routes(ctx: &Arc<Context>) -> Vec<Route> {
    let pages = Arc::new(Pages::new(ctx.clone()));
    vec![
        Route::exact("/").sync(Run::Blocking, &pages, dashboard::get),
        Route::exact("/monitor").sync(Run::Blocking, &pages, monitor::get),
        Route::prefix(device::PREFIX).sync(Run::Blocking, &pages, device::get),
        Route::exact("/alerts").sync(Run::Blocking, &pages, alerts::get),
        Route::exact("/infrastructure").sync(Run::Blocking, &pages, infrastructure::get),
        Route::exact("/wall").sync(Run::Blocking, &pages, wall::get),
        // A store read, then the figures off the runtime (`report::run`).
        Route::exact("/reports").task(Wait::Io, &pages, reports::route),
        Route::exact("/login")
            .public()
            .sync(Run::Inline, &pages, login::get),
        Route::exact("/login")
            .public()
            .task(Wait::Post, &pages, login::post),
        Route::exact("/login/oidc")
            .public()
            .task(Wait::Io, &pages, login_oidc::begin),
        Route::exact("/login/oidc/callback")
            .public()
            .task(Wait::Io, &pages, login_oidc::callback),
        Route::exact("/logout")
            .public()
            .task(Wait::Post, &pages, login::logout),
        Route::exact("/static/app.js")
            .public()
            .sync(Run::Inline, &pages, assets::app_js),
        Route::exact("/static/app.css")
            .public()
            .sync(Run::Inline, &pages, assets::app_css),
        Route::exact("/static/wall.js")
            .public()
            .sync(Run::Inline, &pages, assets::wall_js),
        Route::exact("/static/filters.js")
            .public()
            .sync(Run::Inline, &pages, assets::filters_js),
    ]
}
