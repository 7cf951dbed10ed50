//! The codes both sides act on: the verdict of a license check, the error-body envelope with
//! the error codes an installation branches on, and the integrity signals installations raise.
//!
//! One enum for verdicts means a code the server adds is a compile error in the client's
//! `match`, not a silently unknown string.

use serde::{Deserialize, Serialize};

/// The verdict of a license check (`code` in validate, heartbeat and rejected usage events).
// Serde and strum spell the names by the same rule, so the JSON form and `as_str` agree.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    /// Every check passed.
    Valid,
    /// Malformed, badly signed, foreign, or not a license key.
    InvalidKey,
    /// Validly signed, but no such license is on record.
    NotFound,
    /// Permanently withdrawn.
    Revoked,
    /// Paused by an operator.
    Suspended,
    /// Past its expiry date.
    Expired,
    /// The domain is not allowed by the license (or none was sent to a restricted license).
    DomainMismatch,
    /// The feature asked about is not entitled.
    FeatureNotEntitled,
    /// The feature's monthly limit is reached (until the next period or a limit raise).
    UsageExceeded,
    /// Every installation seat is taken by other installations.
    InstallationLimit,
}

impl Code {
    /// The wire name (`VALID`, `INVALID_KEY`, …).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// `POST /api/usage` answered 503: some events could not be queued (`error.events` says which).
pub const USAGE_QUEUE_UNAVAILABLE: &str = "USAGE_QUEUE_UNAVAILABLE";
/// `POST /api/usage` answered 400: these events can never be accepted (`error.events`).
pub const INVALID_EVENTS: &str = "INVALID_EVENTS";

/// The `{"error": {...}}` envelope of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// The body of an error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// The request field at fault (a JSON-pointer-like path for documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Per-item problems (usage events: an array), as the route documents them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<serde_json::Value>,
    /// Per-problem details of an invalid document (a workflow graph).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issues: Option<serde_json::Value>,
}

/// An integrity signal an installation raises on heartbeat.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Signal {
    /// Its local clock went backwards past its tolerance (a rollback to stretch a lease).
    ClockTampered,
}

impl Signal {
    /// Every signal, for messages listing the known ones.
    pub const ALL: &[Signal] = <Signal as strum::VariantArray>::VARIANTS;

    /// Parses the API name (`CLOCK_TAMPERED`).
    pub fn parse(raw: &str) -> Option<Self> {
        raw.parse().ok()
    }

    /// The API name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_signals_serialize_as_their_wire_names() {
        for code in [Code::Valid, Code::InvalidKey, Code::InstallationLimit] {
            let json = serde_json::to_value(code).expect("json");
            assert_eq!(json, code.as_str());
            assert_eq!(serde_json::from_value::<Code>(json).expect("code"), code);
        }
        assert_eq!(Signal::parse("CLOCK_TAMPERED"), Some(Signal::ClockTampered));
        assert_eq!(Signal::parse("clock_tampered"), None);
    }
}
