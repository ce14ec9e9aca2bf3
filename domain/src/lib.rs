//! # orderflow's domain
//!
//! The model every function shares, with no AWS SDK and no async runtime in it (the crate does not
//! depend on either, so using one here is a compile error): the aggregates as pure `decide` /
//! `evolve`, the events and the envelope every stored and published event carries, schema
//! evolution, the narrow ports the functions talk through, and the application services over
//! those ports (command handling, projection). The adapters live in the `adapters` crate, the
//! Lambda glue in `lambda-glue`, the in-memory adapters and fixtures in `testkit`
//! (docs/architecture.md, "The crates").
//!
//! ## Layout
//!
//! | module | responsibility |
//! | --- | --- |
//! | [`aggregate`] | the [`Aggregate`] trait (`decide` / `evolve`) and [`DomainError`] |
//! | [`order`], [`delivery`], [`coupon`], [`catalogue`] | the aggregates and the catalogue's prices |
//! | [`identity`] | the user pool's groups: customers, couriers, support |
//! | [`ids`] | validated identifiers (`OrderId`, `CustomerId`, `DeliveryId`, …) and stream ids |
//! | [`money`] | integer money: [`money::Cents`], [`money::Currency`] — never floats |
//! | [`address`] | validated delivery address that never prints its contents |
//! | [`validation`] | the error every parser returns: which field broke which rule |
//! | `contracts` | (feature `schemas`) the JSON Schema of every event type and schema version, from the Rust types (docs/event-contracts.md) |
//! | [`events`] | the [`events::DomainEvent`] union and its wire form (event type + data) |
//! | [`envelope`] | [`envelope::StoredEvent`]: the envelope every stored and published event carries |
//! | [`upcasting`] | readers accept every `schema_version` ever written: older ones are upcast on read |
//! | [`ports`] | narrow traits per capability: event store, publisher, notifier, idempotency store, clock |
//! | [`storage_rules`] | what every storage adapter demands alike: append checks, list keys, page sizes, cursors |
//! | [`read_model`] | the order view (status, items, total, delivery, coupons, timeline) and its port |
//! | [`projection`] | projecting stored events into order views: duplicates skipped, gaps healed, conditional writes |
//! | [`repository`] | load → decide → append with a bounded retry on version conflicts |
//! | [`telemetry`] | the functions' metrics (names, units, dimensions), recorded through the `metrics` facade |
//! | `testing` | (tests and feature `testkit` only) the given / when / then helper, re-exported by `testkit` |
#![forbid(unsafe_code)]

pub mod address;
pub mod aggregate;
pub mod catalogue;
#[cfg(feature = "schemas")]
pub mod contracts;
pub mod coupon;
pub mod delivery;
pub mod envelope;
pub mod events;
pub mod identity;
pub mod ids;
pub mod money;
pub mod order;
pub mod ports;
pub mod projection;
pub mod read_model;
pub mod repository;
pub mod storage_rules;
pub mod telemetry;
#[cfg(any(test, feature = "testkit"))]
pub mod testing;
pub mod upcasting;
pub mod validation;

pub use aggregate::{Aggregate, DomainError};
