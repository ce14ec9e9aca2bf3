//! # tools
//!
//! The operator's `orderflow` command, as a library so the integration suites run the same code.
//!
//! | module | responsibility |
//! | --- | --- |
//! | [`demo`] | place a few orders and print their timelines |
//! | [`replay`] | rebuild the order read model from the events table; republish stored events of a time range |
//!
//! Every tool is safe to run twice: projection skips what a view holds already, and every consumer
//! of a republished event is idempotent.
#![forbid(unsafe_code)]

pub mod demo;
pub mod replay;
