//! The AWS adapters: the domain's ports implemented over the AWS SDK, one Cargo feature per
//! service (`dynamodb`, `eventbridge`, `sns`, `sqs`), so a crate links only the SDKs it talks to.
//! SDK types stay inside this crate: no port signature names one, and the domain crate has no SDK
//! dependency at all (docs/architecture.md, "The crates").

pub mod clock;
#[cfg(feature = "dynamodb")]
pub mod dynamo;
#[cfg(feature = "dynamodb")]
pub mod dynamo_catalogue;
#[cfg(feature = "dynamodb")]
pub mod dynamo_views;
#[cfg(feature = "eventbridge")]
pub mod eventbridge;
pub mod sdk;
#[cfg(feature = "sns")]
pub mod sns;
#[cfg(feature = "sqs")]
pub mod sqs;
