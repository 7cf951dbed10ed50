//! Adapters: the AWS implementations of the domain ports, and in-memory ones behind the same ports.

pub mod dynamo;
pub(crate) mod fleet;
pub mod kms;
#[cfg(any(test, feature = "test-util"))]
pub mod local;
pub mod memory;
pub mod sns;
pub mod sqs;
