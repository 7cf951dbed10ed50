//! The domain: identifiers, plans, licenses, operators and the ports services depend on. No AWS
//! here.

pub mod error;
pub mod fleet;
pub mod ids;
pub mod license;
pub mod lifecycle;
pub mod operator;
pub mod plan;
pub mod ports;
pub mod revenue;
pub mod session;
pub mod usage;
pub mod workflow;

pub use error::{DomainError, StoreError};
pub use ids::{
    CustomerId, DomainPattern, Feature, Hostname, InstallationId, LicenseId, ParseError, Validated,
};
pub use license::{
    Actor, AuditEntry, Customer, Installation, InstallationStatus, Lease, LeaseToken, License,
    LicenseStatus,
};
pub use operator::{
    Operator, OperatorCredential, OperatorId, OperatorName, OperatorStatus, OperatorToken,
    Principal, Role, TokenHash,
};
pub use plan::{LimitOverrides, Limits, Plan, PlanPolicy};
pub use usage::{EventId, FeatureUsage, GaugeUsage, Gauges, Period, UsageEvent};
