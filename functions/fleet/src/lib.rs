//! The `fleet` function as a library: its handler, which `main.rs` wires to the Lambda runtime and
//! the cross-route role test (`tests/roles.rs`) calls directly.

pub mod handler;
