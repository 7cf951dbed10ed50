//! Installation-side client: offline lease verification, heartbeats, persisted state, Cloud API
//! calls. Deliberately independent of the server crate (no AWS SDK in installations).
//!
//! - [`LicenseClient::check`] answers "may feature X start now?" from the cached lease, with no
//!   network call; [`LicenseClient::spawn_background`] keeps the lease fresh.
//! - [`token`] verifies license keys and leases offline (ES256 pinned, JWKS).
//! - [`state`] / [`persist`] keep what the installation learnt, atomically and checksummed.
//! - [`cloud`] calls the Cloud API.
//! - Time is injected ([`Clock`]), so expiry, grace and tampering are testable.

pub mod client;
pub mod clock;
pub mod cloud;
pub mod decision;
pub mod persist;
pub mod schedule;
pub mod server;
pub mod state;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod token;
pub mod transport;

pub use client::{
    Background, ClientConfig, ClientError, HeartbeatReport, LicenseClient, LicenseStatus, WorkGuard,
};
pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use cloud::{CloudClient, CloudError, Execution};
pub use decision::{Decision, LockReason};
pub use server::{HttpLicenseServer, LicenseServer, NetError};
pub use token::{Jwks, TrustedKeys};
