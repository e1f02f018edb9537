//! The device page's history panel: the range (`?range=1h|6h|24h|7d|30d`, 1 h by
//! default; anything else is 1 h with a note saying so), RTT and loss from
//! VictoriaMetrics when `victoriametrics.url` is set (else the hour in memory, and the
//! panel says so), outages and availability from the store's transitions, drawn by
//! [`super::chart::history`]. A source that fails or is slow is a sentence in the panel,
//! never a failed page.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::Pages;
use super::chart::history::Drawing;
use super::templates::duration;
use super::view;
use crate::history::{Range, Series, Timeline, availability};
use crate::state::Status;

/// One of the range links.
#[derive(Serialize)]
struct RangeLink {
    key: &'static str,
    label: &'static str,
    current: bool,
}

/// What the template shows; the chart itself (safe markup) comes apart.
#[derive(Serialize, Default)]
pub struct Panel {
    ranges: Vec<RangeLink>,
    range: &'static str,
    range_label: &'static str,
    /// `victoriametrics`, `memory`, or `none` (no chart).
    source: &'static str,
    /// Sentences above the chart: the fallback, an unknown range.
    notes: Vec<String>,
    /// Why there is no chart (or only the hour in memory): the source failed.
    error: Option<String>,
    /// `99.52 %`, None when no status is known in the range.
    availability: Option<String>,
    outages: usize,
    /// Time down or unreachable in the range, `4m 10s`.
    out_for: String,
    /// When part of the range has no known status (before the device was first
    /// decided): how much of it has one, `41s`; the availability is of that part.
    known_for: Option<String>,
    /// The store did not answer: no bands, no availability.
    store_error: Option<String>,
    /// More transitions than were read: the oldest part of the range is a guess.
    partial: bool,
}

impl Panel {
    /// The range shown, as written in the query: `24h`.
    pub fn range(&self) -> &'static str {
        self.range
    }
}

/// The panel of `device` (its status now `current`) for the page's `query`, and its chart.
pub fn panel(
    web: &Pages,
    device: &str,
    current: Status,
    query: Option<&str>,
    now: DateTime<Utc>,
) -> (Panel, Option<String>) {
    let asked = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "range")
            .map(|(_, v)| v.into_owned())
            // `?range=` left empty is the default, not a mistake to point out.
            .filter(|v| !v.is_empty())
    });
    let mut panel = Panel::default();
    let range = match asked.as_deref().map(|a| (a, Range::parse(a))) {
        None => Range::H1,
        Some((_, Some(r))) => r,
        Some((a, None)) => {
            panel.notes.push(format!(
                "Unknown range {a:?}: showing 1 h (the ranges are 1h, 6h, 24h, 7d and 30d)."
            ));
            Range::H1
        }
    };
    panel.range = range.key();
    panel.range_label = range.label();
    panel.ranges = Range::ALL
        .iter()
        .map(|&r| RangeLink {
            key: r.key(),
            label: r.label(),
            current: r == range,
        })
        .collect();
    let start = now - range.length();
    let timeline = match view::store_read(web, async |db| {
        availability::changes(db, device, start).await
    }) {
        Ok((changes, partial)) => {
            let tl = Timeline::of(&changes, current, start, now);
            panel.partial = partial;
            Some(tl)
        }
        Err(e) => {
            panel.store_error = Some(e);
            None
        }
    };
    if let Some(tl) = &timeline {
        let a = tl.availability();
        panel.availability = a.text();
        panel.outages = tl.outages().count();
        panel.out_for = duration(a.out.num_seconds());
        if a.unknown > TimeDelta::zero() {
            panel.known_for = Some(duration((a.up + a.out).num_seconds()));
        }
    }
    let outages: Vec<_> = timeline
        .iter()
        .flat_map(|tl| tl.outages().copied())
        .collect();
    let drawing = |source, step, tick, series: &Series| {
        Drawing {
            start,
            end: now,
            step,
            tick,
            rtt_ms: &series.rtt_ms,
            loss_percent: &series.loss_percent,
            outages: outages.clone(),
            zone: web.ctx.web.display_zone,
            source,
            range: range.key(),
        }
        .svg()
    };
    let memory = |panel: &mut Panel| {
        let series = memory_hour(web, device);
        if series.points() == 0 {
            panel.notes.push(
                "No measurements in memory yet: the chart gains one point per minute of probing."
                    .into(),
            );
            return None;
        }
        panel.source = "memory";
        Some(drawing(
            "memory",
            TimeDelta::minutes(1),
            range.tick(),
            &series,
        ))
    };
    let chart = match &web.ctx.victoriametrics {
        Some(vm) => {
            let read = tokio::runtime::Handle::try_current()
                .map_err(|_| "no runtime".to_string())
                .and_then(|h| h.block_on(vm.device(device, range, now)));
            match read {
                Ok(series) if series.points() > 0 => {
                    panel.source = "victoriametrics";
                    Some(drawing(
                        "victoriametrics",
                        range.step(),
                        range.tick(),
                        &series,
                    ))
                }
                Ok(_) => {
                    panel.notes.push(format!(
                        "VictoriaMetrics at {} has no RTT or loss of this device in the last {} \
                         (does it scrape this appliance's /metrics?).",
                        vm.base(),
                        range.label()
                    ));
                    None
                }
                Err(e) => {
                    let mut error =
                        format!("VictoriaMetrics at {} did not answer: {e}.", vm.base());
                    if range == Range::H1 {
                        error.push_str(" Below: the last hour in memory.");
                    }
                    panel.error = Some(error);
                    // The hour in memory is still true for 1 h.
                    (range == Range::H1).then(|| memory(&mut panel)).flatten()
                }
            }
        }
        None if range == Range::H1 => {
            panel.notes.push(
                "Only the last hour, kept in memory, is shown: set victoriametrics.url in the \
                 settings for up to 30 days from VictoriaMetrics."
                    .into(),
            );
            memory(&mut panel)
        }
        None => {
            panel.notes.push(format!(
                "No RTT or loss for {}: only the last hour is kept in memory. Set \
                 victoriametrics.url in the settings for up to 30 days from VictoriaMetrics; \
                 the outages and availability below come from the stored transitions.",
                range.label()
            ));
            None
        }
    };
    if panel.source.is_empty() {
        panel.source = "none";
    }
    (panel, chart)
}

/// The hour in memory as a series, minute by minute.
fn memory_hour(web: &Pages, device: &str) -> Series {
    let points = web.ctx.history.series(device).unwrap_or_default();
    Series {
        rtt_ms: points
            .iter()
            .filter_map(|(t, p)| Some((*t, p.rtt_ms()?)))
            .collect(),
        loss_percent: points
            .iter()
            .filter_map(|(t, p)| Some((*t, f64::from(p.loss_percent()?))))
            .collect(),
    }
}
