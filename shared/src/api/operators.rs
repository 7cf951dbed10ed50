//! Operator routes' wire types: requests (raw, as sent) into commands, operators into views.
//!
//! Unlike the other admin types these live here rather than in `nectar-protocol`: installations
//! never see operators, so the types are shared by the server, `nectar-admin` and the tests
//! only, and may use the domain's types directly.

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

use super::{parse, text};
use crate::domain::ports::SweepPage;
use crate::domain::{DomainError, Operator, OperatorId, OperatorName, OperatorStatus, Role};
use crate::service::operators::NewOperator;

/// Longest audit reason (as for licenses).
const MAX_REASON: usize = 500;

/// An optional field that, when present, must not be `null`: the spec types these as strings,
/// so `null` is refused as a wrong type like any other.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// `POST /api/admin/operators`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOperatorRequest {
    /// 1 to 64 characters of `A-Z a-z 0-9 . _ @ -`, starting with a letter or digit.
    pub name: String,
    /// `viewer`, `support` or `admin`.
    pub role: String,
    /// Contact address.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub email: Option<String>,
}

/// `POST /api/admin/operators/{operatorId}/rotate`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateOperatorRequest {
    /// Why (kept in the operator's audit trail).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub reason: Option<String>,
}

/// `POST /api/admin/operators/{operatorId}/disable`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableOperatorRequest {
    /// Why (kept in the operator's audit trail).
    pub reason: String,
}

impl TryFrom<CreateOperatorRequest> for NewOperator {
    type Error = DomainError;

    fn try_from(r: CreateOperatorRequest) -> Result<Self, DomainError> {
        Ok(Self {
            name: parse("name", OperatorName::parse(&r.name))?,
            role: Role::parse(&r.role).ok_or_else(|| DomainError::InvalidValue {
                field: "role",
                message: "role must be viewer, support or admin".into(),
            })?,
            email: r.email,
        })
    }
}

impl RotateOperatorRequest {
    /// The reason, checked.
    pub fn reason(self) -> Result<Option<String>, DomainError> {
        self.reason
            .map(|r| text("reason", r, MAX_REASON))
            .transpose()
    }
}

impl DisableOperatorRequest {
    /// The reason, checked.
    pub fn reason(self) -> Result<String, DomainError> {
        text("reason", self.reason, MAX_REASON)
    }
}

/// An operator as the API shows it (never its token or the token's hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorView {
    /// Id.
    pub id: OperatorId,
    /// Name.
    pub name: String,
    /// Contact address, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Role.
    pub role: Role,
    /// `active` or `disabled`.
    pub status: OperatorStatus,
    /// Creation.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When its current token was made.
    #[serde(with = "time::serde::rfc3339")]
    pub last_rotated_at: OffsetDateTime,
}

impl From<&Operator> for OperatorView {
    fn from(o: &Operator) -> Self {
        Self {
            id: o.id,
            name: o.name.to_string(),
            email: o.email.clone(),
            role: o.role,
            status: o.status,
            created_at: o.created_at,
            last_rotated_at: o.last_rotated_at,
        }
    }
}

/// `POST /api/admin/operators` (201) and `…/rotate` (200) answer: the operator and its new
/// token, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperatorTokenResponse {
    /// The operator.
    pub operator: OperatorView,
    /// Its bearer token: hand it over now; only its hash is kept.
    pub token: String,
}

/// `GET /api/admin/operators` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperatorListResponse {
    /// This page, in creation order.
    pub operators: Vec<OperatorView>,
    /// Cursor of the next page (`?after=`), absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl From<&SweepPage<Operator>> for OperatorListResponse {
    fn from(page: &SweepPage<Operator>) -> Self {
        Self {
            operators: page.items.iter().map(OperatorView::from).collect(),
            next: page.next.clone(),
        }
    }
}

/// `POST /api/admin/operators/{operatorId}/disable` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperatorChangeResponse {
    /// The operator after the call.
    pub operator: OperatorView,
    /// Whether this call changed it (false: it was already disabled).
    pub changed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_refuse_null_where_a_string_is_expected_and_unknown_fields() {
        let ok: CreateOperatorRequest =
            serde_json::from_str(r#"{"name":"alice","role":"viewer"}"#).expect("ok");
        assert_eq!(ok.email, None);
        for bad in [
            r#"{"name":"alice","role":"viewer","email":null}"#,
            r#"{"name":"alice","role":"viewer","extra":1}"#,
            r#"{"name":"alice"}"#,
        ] {
            assert!(
                serde_json::from_str::<CreateOperatorRequest>(bad).is_err(),
                "{bad}"
            );
        }
        assert!(serde_json::from_str::<RotateOperatorRequest>(r#"{"reason":null}"#).is_err());
        assert!(serde_json::from_str::<RotateOperatorRequest>("{}").is_ok());
    }

    #[test]
    fn names_and_roles_are_checked_with_the_field_named() {
        let new = |name: &str, role: &str| {
            NewOperator::try_from(CreateOperatorRequest {
                name: name.into(),
                role: role.into(),
                email: None,
            })
        };
        assert!(new("alice", "support").is_ok());
        for (name, role, field) in [
            ("al ice", "viewer", "name"),
            ("bootstrap", "admin", "name"),
            ("alice", "root", "role"),
            ("alice", "Admin", "role"),
        ] {
            match new(name, role) {
                Err(DomainError::InvalidField { field: f, .. })
                | Err(DomainError::InvalidValue { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{name}/{role}: {other:?}"),
            }
        }
    }
}
