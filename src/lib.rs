//! wardops: a network monitoring appliance.
//!
//! # Layout
//! Data flows top to bottom; a module imports only from the modules above it.
//! - [`maintenance`]: maintenance windows and when they are on, exact across DST (pure).
//! - [`systemd`]: what systemd is told (`READY=1`, the watchdog, `STOPPING=1`); a leaf.
//! - [`snmp`]: reads a router's interfaces table over SNMP v2c/v3 (one shared UDP socket
//!   per address family), and which interface is an ISP uplink (pure).
//! - [`config`]: settings and the YAML inventory (regions → branches → devices), validated.
//! - [`access`]: who is asking: roles, region scope, the principal on every request.
//! - [`probe`]: the ICMP pinger (one shared socket per address family).
//! - [`state`]: the one owner of device status and of routers' ISP lines; versioned
//!   snapshots for every reader.
//! - [`cluster`]: several appliances, one truth (docs/cluster.md): shards and their leases
//!   with epochs in PostgreSQL, the members' loop, the event feed over Redis Streams, the
//!   view of the devices other members own.
//! - [`schedule`]: runs each device's probes at a stable phase of its interval, and each
//!   router's SNMP polls of its ISP lines (`schedule::uplinks`).
//! - [`store`]: durable state and alerts (PostgreSQL or SQLite), one ordered writer with a spool.
//! - [`reload`]: GitOps hot reload: watches the inventory, validates aside, swaps when valid.
//! - [`read_model`]: what every surface derives from a snapshot: the list order and its
//!   selection, filters and paging, counts, the RTT history, how times are written.
//! - [`report`]: availability reports (availability, downtime, unmonitored time, MTTR,
//!   MTBF, SLA), computed exactly from the stored transitions, runs and windows (pure
//!   but for `report::run`, the store read every surface goes through).
//! - [`history`]: a device's history over a range: RTT and loss read back from
//!   VictoriaMetrics, outages and availability from the store's transitions.
//! - [`http`]: the transport: accept loop, limits, HTTPS (`http::tls`), the route table type,
//!   responses. No routes.
//! - [`feed`]: the live event feed (state and alert events, backlog, one stream per client).
//! - [`notify`]: notifications (outbox, routes and groups, Alertmanager, webhook, e-mail).
//! - [`context`]: the one context every surface reads, built once.
//! - [`api`]: the JSON API, health and lifecycle routes (`/api/v1/…`, `/healthz`,
//!   `/readyz`, `/-/reload`).
//! - [`metrics`]: `GET /metrics`.
//! - [`web`]: the web pages (minijinja) and their static files.
//! - [`app`]: composes the route tables and runs everything until shutdown.
//! - [`cli`]: the commands; [`demo`]: example inventories of loopback devices.

pub mod access;
pub mod api;
pub mod app;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod context;
pub mod demo;
pub mod feed;
pub mod history;
pub mod http;
pub mod maintenance;
pub mod metrics;
pub mod notify;
pub mod outbound;
pub mod probe;
pub mod rate;
pub mod read_model;
pub mod reload;
pub mod report;
pub mod schedule;
pub mod snmp;
pub mod state;
pub mod store;
pub mod systemd;
pub mod web;
