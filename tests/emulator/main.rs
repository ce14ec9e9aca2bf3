//! Adapter tests against the AWS API emulator (docs/architecture.md, "Tests, in layers", layer 3):
//! real SDK calls to moto (or LocalStack) on 127.0.0.1, reached through `AWS_ENDPOINT_URL`. Run
//! them with `scripts/test.sh`.
//!
//! One test binary with a module per adapter, so the AWS SDK is linked once.

// Fixture helpers outside #[test] functions panic with a message too.
#![allow(clippy::expect_used)]

mod bridge_stream_poller;
mod chaos_proxy;
mod courier_api;
mod dlq;
mod event_bridge;
mod event_store;
mod event_store_stream;
mod notifications;
mod order_api;
mod order_views;
mod saga;
mod stream_pipeline;
mod stream_poison;
