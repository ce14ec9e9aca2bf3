//! # The local bridge
//!
//! `orderflow-bridge` plays, on one machine without Docker, the parts of AWS that moto does not:
//! API Gateway routes (with their JWT authorizer), Lambda's SQS and DynamoDB-stream event source
//! mappings, and schedules.
//! Functions run as processes of the one deployed bootstrap under [`host`] (`orderflow-bridge
//! functions`), which plays Lambda's Invoke and Runtime APIs.
//! Everything it knows comes from `template.yaml`: there is no second list of resources.
//!
//! ## Layout
//!
//! | module | responsibility |
//! | --- | --- |
//! | [`cli`] | the command line, parsed into plain values |
//! | [`template`] | the parsed template and the `!Ref`/`!Sub`/`!GetAtt` resolver |
//! | [`resources`] | what `setup` creates (tables, bus, queues, rules, topics) and the env file (pure) |
//! | [`setup`] | creating those on the emulator, idempotently, plus the notifications inbox |
//! | [`stack`] | what `run` plays: functions, routes, SQS/stream mappings, schedules (pure) |
//! | [`routes`] | the route table and API Gateway's path matching (pure) |
//! | [`apigw`] | the payload-2.0 event and the response translation (pure) |
//! | [`authorizer`] | the HTTP API's JWT authorizer: API Gateway's token rules (pure), the pool's keys |
//! | [`schedule`] | `rate(...)` expressions (pure) |
//! | [`batch_response`] | Lambda's rules for partial batch responses (pure) |
//! | [`stream_retry`] | the stream mapping's retry, bisect and give-up rules as a state machine (pure) |
//! | [`sqs_event`], [`stream_event`] | the SQS and DynamoDB events, the on-failure record |
//! | [`host`] | the local Lambda: every function's processes, the Invoke and Runtime APIs |
//! | [`invoke`] | the Lambda Invoke API client |
//! | [`faults`] | batches delivered twice and answers dropped after side effects, for a soak |
//! | [`http_server`] | the local API Gateway (hyper, 127.0.0.1) |
//! | [`sqs_poller`], [`stream_poller`], [`scheduler`] | the event sources at work |
//! | [`warm_up`] | starting every function, one at a time, before the bridge is ready |
//! | [`run`] | starting and stopping all of it |
//! | [`identity`] | the stage's user pool and app client: finding them, users, tokens (also the operator's tool's) |
//! | [`http_client`] | a small HTTP/1 client with deadlines (invokes; the operator's demo and load runs) |
//! | [`signal`] | SIGINT / SIGTERM as a future |

#![forbid(unsafe_code)]

pub mod apigw;
pub mod authorizer;
pub mod batch_response;
pub mod cli;
pub mod faults;
pub mod host;
pub mod http_client;
pub mod http_server;
pub mod identity;
pub mod invoke;
pub mod resources;
pub mod routes;
pub mod run;
pub mod schedule;
pub mod scheduler;
pub mod setup;
pub mod signal;
pub mod sqs_event;
pub mod sqs_poller;
pub mod stack;
pub mod stream_event;
pub mod stream_poller;
pub mod stream_retry;
pub mod template;
pub mod warm_up;
