//! Sluice: a self-hosted low-code API builder. Postgres tables and JSON flow graphs, compiled
//! once and served as REST endpoints. The binary is a thin shell over this library.
//!
//! Dependencies point one way; docs/ARCHITECTURE.md states the rule and `tests/layers.rs`
//! checks it.

pub mod auth;
pub mod base;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod config;
pub mod engine;
pub mod events;
pub mod flow;
pub mod http;
pub mod nodes;
pub mod passwords;
pub mod pg;
pub mod project;
pub mod queue;
pub mod serving;
pub mod startup;
pub mod tables;
pub mod telemetry;
