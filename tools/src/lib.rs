//! # tools
//!
//! The operator's `orderflow` command, the local bridge `orderflow-bridge`, the chaos proxy
//! `orderflow-chaos` and the cold-start harness `orderflow-coldstart`, as a library so the
//! integration suites run the same code.
//!
//! | module | responsibility |
//! | --- | --- |
//! | [`cli`] | `orderflow`'s command line (clap): every command, its options and environment defaults |
//! | [`dlq`] | `orderflow dlq`: the stage's dead-letter, on-failure and poison queues — list, show, redrive |
//! | [`story`] | `orderflow order ID`: an order's events, its delivery's and coupons', the notifications sent |
//! | [`progress`] | progress of long runs: live on a terminal, plain lines otherwise |
//! | [`demo`] | place a few orders and print their timelines (through the event store) |
//! | [`demo_api`] | the same story through the HTTP API of a running stack: orders, couriers, notifications |
//! | [`load`] | `orderflow load`: many orders through a running stack's HTTP API; latency percentiles and throughput |
//! | [`report_html`] | a run's figures as one self-contained HTML page with SVG charts (`--report FILE` of `load` and `soak`) |
//! | [`replay`] | rebuild the order read model from the events table; republish stored events of a time range |
//! | [`coldstart`] | `orderflow-coldstart`: Lambda cold starts through a fake Runtime API, against a hello-world floor |
//! | [`chaos`] | `orderflow-chaos`: a seeded fault-injecting proxy in front of the AWS API emulators, for soak tests |
//! | [`bridge`] | `orderflow-bridge`: runs the whole system locally from `template.yaml` (see its layout) |
//! | [`http_client`] | a small HTTP/1 client with deadlines (the bridge's invokes, the API demo, the load run) |
//! | [`identity`] | the stage's Cognito user pool and app client: users in groups, sign-ins for tokens |
//!
//! Every tool is safe to run twice: projection skips what a view holds already, and every consumer
//! of a republished event is idempotent.
#![forbid(unsafe_code)]

pub mod chaos;
pub mod cli;
pub mod coldstart;
pub mod demo;
pub mod demo_api;
pub mod dlq;
pub mod load;
pub mod progress;
pub mod replay;
pub mod report_html;
pub mod soak;
pub mod story;

/// The local bridge (its own crate), and what the operator's tool shares with it.
pub use bridge::{self, http_client, identity, signal};
