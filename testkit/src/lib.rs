//! # orderflow's testkit
//!
//! Everything the tests share and no function ships (a dev-dependency only; docs/architecture.md,
//! "The crates"): the in-memory adapters, the given / when / then helper for aggregates, Lambda
//! events as their sources deliver them, API Gateway requests for handler tests, and the checks
//! every HTTP function's OpenAPI document must pass.
//!
//! | module | what |
//! | --- | --- |
//! | [`memory`] | in-memory adapters of every port, with the real ones' semantics, able to fail on demand |
//! | [`given`] | given / when / then for aggregates |
//! | [`lambda`] | SQS events and EventBridge bodies as Lambda delivers them; failed ids of an answer |
//! | [`http`] | API Gateway v2 requests from a real fixture, answers read back as JSON |
//! | [`openapi_checks`] | an HTTP function's OpenAPI document against what it serves and enforces |
#![forbid(unsafe_code)]

pub mod http;
pub mod memory;
pub mod openapi_checks;

pub use domain::address::sample as sample_address;
pub use domain::testing::{Given, When, given};
pub use lambda_glue::fixtures as lambda;
