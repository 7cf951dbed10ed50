//! Adapters: the AWS implementations of the domain ports.

pub mod dynamo;
pub mod kms;
#[cfg(any(test, feature = "test-util"))]
pub mod local;
pub mod sns;
pub mod sqs;
