//! `orderflow-chaos`: a seeded fault-injecting HTTP proxy between orderflow's code and the AWS API
//! emulators, for chaos soak tests. Point `AWS_ENDPOINT_URL` (and the per-service variables) at
//! it; it forwards each request to the emulator for its service, except the share it faults:
//! AWS error answers (500, throttling 400, 503), connections closed without an answer (reset),
//! held past the SDK's attempt timeout (stall), and answers dropped after the request was applied
//! (lost: the case that makes a caller retry something that already happened).
//!
//! | module | responsibility |
//! | --- | --- |
//! | [`cli`] | the command line |
//! | [`classify`] | which service and operation a request is for |
//! | [`fault`] | the seeded decision; the AWS error answers per protocol |
//! | [`proxy`] | the server: forwarding, injecting, `GET /chaos/stats` |
//! | [`journal`] | one JSON line per injected fault; the counters |
//!
//! In a test: `let proxy = chaos::serve(options).await?;` then clients on `proxy.url()`, and
//! `proxy.stop().await` at the end.

pub mod classify;
pub mod cli;
pub mod fault;
pub mod journal;
pub mod proxy;

pub use fault::{FaultKind, FaultPlan, Mix, Spare};
pub use proxy::{ChaosOptions, ChaosProxy, Upstreams, serve};
