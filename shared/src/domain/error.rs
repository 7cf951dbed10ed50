//! Domain and storage errors, by meaning. `crate::http` maps them to responses in one place.

use super::ids::ParseError;
use super::license::LicenseStatus;
use crate::token::SignError;

/// A storage failure, as adapters report it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional create found the item already there.
    #[error("item already exists")]
    AlreadyExists,
    /// The store throttled us; the caller may retry later.
    #[error("store throttled the request")]
    Throttled,
    /// The store could not be reached, or did not answer in time: the caller may retry later.
    #[error("store unreachable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored item does not decode: a bug or a hand edit, never the caller's fault.
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
    /// A listing cursor that is not one this listing handed out (another filter's, or made up).
    #[error("the cursor does not belong to this listing")]
    InvalidCursor,
    /// Any other failure of the store.
    #[error("store request failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why a service refused or failed an operation.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A request field that parsed as JSON but breaks its format rule.
    #[error("{field}: {source}")]
    InvalidField {
        /// The API field name.
        field: &'static str,
        /// What rule it broke.
        #[source]
        source: ParseError,
    },
    /// A request field with an out-of-range or inconsistent value.
    #[error("{field}: {message}")]
    InvalidValue {
        /// The API field name.
        field: &'static str,
        /// What is wrong, for the caller.
        message: String,
    },
    /// A plan name the catalogue does not have.
    #[error("unknown plan `{0}`")]
    UnknownPlan(String),
    /// A feature name the product does not know.
    #[error("unknown feature `{0}`")]
    UnknownFeature(String),
    /// No such customer.
    #[error("customer not found")]
    CustomerNotFound,
    /// No such license.
    #[error("license not found")]
    LicenseNotFound,
    /// No such operator.
    #[error("operator not found")]
    OperatorNotFound,
    /// The license has no installation with that id.
    #[error("installation not found")]
    InstallationNotFound,
    /// The installation heartbeated during each attempt to release its seat.
    #[error("the installation kept heartbeating while its seat was being released; retry")]
    InstallationBusy,
    /// An active operator already has this name.
    #[error("an active operator is already named `{0}`")]
    OperatorNameTaken(String),
    /// Another rotation of the operator's token landed while this one was being made.
    #[error("the operator's token was rotated by someone else meanwhile; look at it again")]
    OperatorRotatedMeanwhile,
    /// The operator is disabled (for good): its token can no longer change.
    #[error("cannot {action} a disabled operator; create a new one")]
    OperatorDisabled {
        /// What was asked (`rotate the token of`).
        action: &'static str,
    },
    /// The license's status does not allow the action.
    #[error("cannot {action} a license that is {}", from.as_str())]
    InvalidTransition {
        /// What was asked.
        action: &'static str,
        /// The status it is in.
        from: LicenseStatus,
    },
    /// Too many installations activated on this license this hour.
    #[error(
        "at most {limit} installations may be activated per license per hour; retry in {retry_after} s"
    )]
    ActivationRateLimited {
        /// The hourly ceiling.
        limit: u64,
        /// Seconds until the window ends.
        retry_after: u64,
    },
    /// Every installation seat of the license is taken.
    #[error("all {limit} installation seats of license {license} are in use; release one first")]
    SeatsFull {
        /// The license.
        license: String,
        /// Its seat limit.
        limit: u64,
    },
    /// The claims would exceed what KMS can sign.
    #[error("the license is too large to sign ({0} bytes of signing input; limit 4096)")]
    LicenseTooLarge(usize),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing failed.
    #[error("signing failed")]
    Signing(#[source] SignError),
}

impl From<SignError> for DomainError {
    fn from(e: SignError) -> Self {
        match e {
            SignError::TooLarge(n) => Self::LicenseTooLarge(n),
            other => Self::Signing(other),
        }
    }
}
