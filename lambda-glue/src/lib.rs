//! # orderflow's Lambda glue
//!
//! What turns the domain's services into Lambda functions, whatever the function: reading queue
//! batches (EventBridge event in an SQS message → stored event, `batchItemFailures` for exactly
//! the failed messages), scheduled invocations, configuration from the environment, and (feature
//! `http`) HTTP serving — problem+json answers, field-naming request parsing, the caller from the
//! authorizer's claims, route tables. The registry's runtime entry point (`function-registry`)
//! builds on it (docs/architecture.md, "The crates").
//!
//! | module | responsibility |
//! | --- | --- |
//! | [`consumer`] | SQS consumers: EventBridge event → stored event, one outcome per message |
//! | [`schedule`] | scheduled handlers (the overdue check) |
//! | [`config`] | settings from the environment, with errors naming the variable |
//! | `http` | (feature `http`) problem+json responses, request parsing, callers, routes, serving |
//! | `fixtures` | (tests and feature `fixtures` only) Lambda events as the sources deliver them |
#![forbid(unsafe_code)]

pub mod config;
pub mod consumer;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
#[cfg(feature = "http")]
pub mod http;
pub mod schedule;
