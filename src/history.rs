//! A device's history over a chosen range, for its page: which ranges there are and how
//! finely each is sampled ([`range`]), its RTT and loss read back from the
//! VictoriaMetrics that scrapes this appliance ([`victoriametrics`]: the query, the
//! client with its deadline and size limit, the answer's parsing), and its outages and
//! availability from the store's transitions ([`availability`]).
//!
//! Samples are never kept here (design rule: store transitions, not samples): without
//! VictoriaMetrics the page falls back to the last hour in memory
//! ([`crate::read_model::history`]). Nothing in this module renders; `web::history`
//! does.

pub mod availability;
pub mod range;
pub mod recent;
pub mod victoriametrics;

pub use availability::{Availability, Span, Timeline};
pub use range::Range;
pub use victoriametrics::{Series, VictoriaMetrics};
