//! wardops: a network monitoring appliance.
//!
//! # Layout
//! Data flows top to bottom:
//! - [`config`]: settings and the YAML inventory (regions → branches → devices), validated.
//! - [`probe`]: the ICMP pinger (one shared socket per address family).
//! - [`schedule`]: runs each device's probes at a stable phase of its interval.
//! - [`reload`]: GitOps hot reload: watches the inventory, validates aside, swaps when valid.
//! - [`state`]: the one owner of device status; versioned snapshots for every reader.
//! - [`store`]: durable state and alerts (PostgreSQL or SQLite), one ordered writer with a spool.
//! - [`http`]: JSON API, `/metrics`, health endpoints.
//! - [`web`]: web pages (minijinja) and the live event feed (SSE).
//! - [`app`]: wires the pieces together and runs them until shutdown.
//! - [`demo`]: generates example inventories of loopback devices.

pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod http;
pub mod probe;
pub mod reload;
pub mod schedule;
pub mod state;
pub mod store;
pub mod web;
