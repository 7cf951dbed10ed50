//! The wire contract between Nectar Cloud and the installations that call it, defined once.
//!
//! The server (`shared`), the installation client (`nectar-client`) and the sidecar
//! (`nectar-agent`) all read and write these types, so a field renamed on one side is a compile
//! error on the other instead of a failure in an end-to-end run. The crate is serde only: no AWS,
//! no async runtime, no HTTP client, because installations depend on it.
//!
//! - [`codes`]: verdict codes, error-body shape, shared error codes, integrity signals.
//! - [`rules`]: the syntax of feature names, client-chosen ids, host names and domain patterns.
//! - [`token`]: token kinds, limits, license/lease/endorsement claims, JWK/JWKS, activation files.
//! - `jws` (feature `jws`): the ES256 compact-JWS verifier and encoder both sides share.
//! - [`licensing`]: validate and heartbeat bodies and the license/installation views.
//! - [`admin`]: admin routes (customers, licenses, status changes, lookup) and health.
//! - [`fleet`]: the operators' listings (customers, licenses, installations, needs attention).
//! - [`metrics`]: the dashboard's daily figures (licenses, installations, usage, revenue).
//! - [`usage`]: usage events, usage answers and statistics.
//! - [`workflows`]: workflow execution bodies.
//! - [`vocabulary`]: how a reader types ids (plain strings, or a server's validated newtypes).
//! - `testing` (feature `test-signer`): the one local ES256 signer tests sign tokens with.

pub mod admin;
pub mod codes;
pub mod fleet;
#[cfg(feature = "jws")]
pub mod jws;
pub mod licensing;
pub mod metrics;
pub mod objects;
pub mod rules;
#[cfg(feature = "test-signer")]
pub mod testing;
pub mod token;
pub mod usage;
pub mod vocabulary;
pub mod workflows;

pub use codes::Code;
pub use vocabulary::{Vocabulary, Wire};
