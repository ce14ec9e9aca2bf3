//! # orderflow shared library
//!
//! Everything the orderflow Lambda functions have in common: the domain (pure aggregates), the
//! event envelope and its schema evolution, the ports the functions talk through, and the adapters
//! that implement those ports (in memory for tests, DynamoDB for production).
//!
//! ## Layout
//!
//! | module | responsibility |
//! | --- | --- |
//! | `http` | (feature `http`) problem+json responses and field-naming request parsing for the HTTP functions |
//! | [`identity`] | the user pool's groups: customers, couriers, support |
//! | [`ids`] | validated identifiers (`OrderId`, `CustomerId`, `DeliveryId`, …) and generated ids |
//! | [`money`] | integer money: [`money::Cents`], [`money::Currency`] — never floats |
//! | [`address`] | validated delivery address that never prints its contents |
//! | [`validation`] | the error every parser returns: which field broke which rule |
//! | `contracts` | (feature `schemas`) the JSON Schema of every event type and schema version, from the Rust types (docs/event-contracts.md) |
//! | [`consumer`] | SQS consumers: EventBridge event → stored event, `batchItemFailures` for exactly the failed messages |
//! | [`domain`] | the aggregates: [`domain::order`], [`domain::delivery`], [`domain::coupon`] as pure `decide` / `evolve` |
//! | [`events`] | the [`events::DomainEvent`] union and its wire form (event type + data) |
//! | [`envelope`] | [`envelope::StoredEvent`]: the envelope every stored and published event carries |
//! | [`upcasting`] | readers accept every `schema_version` ever written: older ones are upcast on read |
//! | [`ports`] | narrow traits per capability: event store, publisher, notifier, idempotency store, clock |
//! | [`read_model`] | the order view (status, items, total, delivery, coupons, timeline) and its port |
//! | [`projection`] | projecting stored events into order views: duplicates skipped, gaps healed, conditional writes |
//! | [`repository`] | load → decide → append with a bounded retry on version conflicts |
//! | [`telemetry`] | the functions' metrics (names, units, dimensions), recorded through the `metrics` facade |
//! | [`adapters`] | [`adapters::memory`] (tests), [`adapters::dynamo`] (DynamoDB event store, tables), [`adapters::dynamo_views`] (order views) [`adapters::eventbridge`] (publisher to the bus) and [`adapters::sns`] (customer notifications) |
//! | [`testing`] | the given / when / then helper for aggregate tests |
#![forbid(unsafe_code)]

pub mod adapters;
pub mod address;
pub mod config;
pub mod consumer;
#[cfg(feature = "schemas")]
pub mod contracts;
pub mod domain;
pub mod envelope;
pub mod events;
#[cfg(feature = "http")]
pub mod http;
pub mod identity;
pub mod ids;
pub mod money;
pub mod ports;
pub mod projection;
pub mod read_model;
pub mod repository;
pub mod schedule;
pub mod telemetry;
pub mod testing;
pub mod upcasting;
pub mod validation;
