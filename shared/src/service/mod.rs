//! Domain services: the operations handlers and the CLI call, written against ports only.

pub mod activation;
pub mod admin;
pub mod changes;
pub mod check;
pub mod fleet;
pub mod heartbeat;
pub mod installations;
pub mod lifecycle;
pub mod metrics;
pub mod operators;
pub mod usage;
pub mod validate;
pub mod workflows;
