//! # delivery
//!
//! The delivery context (docs/architecture.md, "Domain"): a delivery is scheduled when an order is
//! placed, moved by couriers over HTTP, checked for lateness on a schedule, and cancelled with its
//! order — or, when the cancel arrives after dispatch, refused explicitly.
//!
//! | module | responsibility |
//! | --- | --- |
//! | [`reactions`] | `delivery-on-order-placed`, `delivery-on-order-cancelled` (SQS handlers) |
//! | [`courier`] | `courier-api`: dispatch, report a delay, complete, fail (API Gateway HTTP API) |
//! | [`config`] | `Config::from_env` of each function |
//! | [`overdue`] | `delivery-overdue-check`: marks deliveries past their ETA as delayed, once per delay |
#![forbid(unsafe_code)]

pub mod config;
pub mod courier;
pub mod overdue;
pub mod reactions;
