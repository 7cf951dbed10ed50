//! Who may call which admin route: the one table of the role each admin route needs, and the
//! check every admin handler runs right after routing — authenticate the bearer token, then
//! compare roles.
//!
//! - No token, an unknown one, or a disabled operator's: `401 UNAUTHORIZED`, one answer for all.
//! - A known operator whose role is below the route's: `403 FORBIDDEN`, naming both roles.
//!
//! The table is the specification: `docs/openapi.yaml` states the same role on each admin
//! operation (`x-nectar-role`) and the README's matrix is rendered from it — both checked here.

use lambda_http::Request;
use lambda_http::http::StatusCode;
use lambda_http::http::header::AUTHORIZATION;

use super::route::keys;
use super::{ApiError, Matched};
use crate::config::AdminAuth;
use crate::domain::ports::OperatorDirectory;
use crate::domain::{Principal, Role};

/// The role each admin route needs. Reads are `viewer` (except the operator list: who holds
/// which access is itself access management); suspend, reinstate and renew are `support`;
/// everything that creates credentials, customers or licenses, changes a license's terms or
/// owner, or ends a license, is `admin`.
pub const ROLES: &[(&str, Role)] = &[
    (keys::CUSTOMER_LICENSES, Role::Viewer),
    (keys::LICENSE_AUDIT, Role::Viewer),
    (keys::LICENSE_USAGE, Role::Viewer),
    (keys::FLEET_CUSTOMERS, Role::Viewer),
    (keys::FLEET_LICENSES, Role::Viewer),
    (keys::FLEET_INSTALLATIONS, Role::Viewer),
    (keys::FLEET_ATTENTION, Role::Viewer),
    (keys::METRICS, Role::Viewer),
    (keys::METRICS_HISTORY, Role::Viewer),
    (keys::USAGE_REPORT, Role::Viewer),
    (keys::LICENSE_SUSPEND, Role::Support),
    (keys::LICENSE_REINSTATE, Role::Support),
    (keys::LICENSE_RENEW, Role::Support),
    (keys::INSTALLATION_RELEASE, Role::Support),
    (keys::REVOKE, Role::Admin),
    (keys::CUSTOMER_CREATE, Role::Admin),
    (keys::LICENSE_ISSUE, Role::Admin),
    (keys::LICENSE_CHANGE, Role::Admin),
    (keys::LICENSE_ACTIVATE, Role::Admin),
    (keys::OPERATOR_CREATE, Role::Admin),
    (keys::OPERATOR_LIST, Role::Admin),
    (keys::OPERATOR_ROTATE, Role::Admin),
    (keys::OPERATOR_DISABLE, Role::Admin),
];

/// The role route `key` needs; `None` for routes that are not admin routes.
pub fn required_role(key: &str) -> Option<Role> {
    ROLES.iter().find(|(k, _)| *k == key).map(|(_, r)| *r)
}

/// Authenticates the request's bearer token (`Authorization: Bearer <token>`) and checks that
/// its operator's role includes what the matched route needs. Runs before the body is parsed:
/// no credentials, no information about the request's validity.
pub async fn authorize<R, O>(
    req: &Request,
    matched: &Matched<R>,
    bootstrap: &AdminAuth,
    operators: &O,
) -> Result<Principal, ApiError>
where
    O: OperatorDirectory + ?Sized,
{
    let token = bearer(req);
    let principal = crate::service::operators::authenticate(bootstrap, operators, token)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let needed = required_role(matched.key).unwrap_or_else(|| {
        // A handler authorising a route the table does not list is a bug: fail closed.
        tracing::error!(
            route = matched.key,
            "admin route without a role; requiring admin"
        );
        Role::Admin
    });
    if !principal.role.includes(needed) {
        return Err(ApiError::forbidden(needed, principal.role));
    }
    Ok(principal)
}

/// The bearer token of the request, or `""`.
fn bearer(req: &Request) -> &str {
    req.headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .unwrap_or("")
}

impl ApiError {
    /// 403 for an authenticated operator whose role is below the route's.
    pub fn forbidden(needed: Role, have: Role) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            format!("this route needs the `{needed}` role; you are `{have}`"),
        )
    }
}

/// The README's role × route matrix, rendered from [`ROLES`].
pub fn render_matrix() -> String {
    let mut out = String::from(
        "Rendered from `shared::http::access::ROLES` (generated — `cargo test -p shared` checks \
         this table):\n\n| route | needs | viewer | support | admin |\n|---|---|---|---|---|\n",
    );
    for (key, needed) in ROLES {
        let cells: Vec<&str> = Role::ALL
            .iter()
            .map(|r| if r.includes(*needed) { "yes" } else { "403" })
            .collect();
        out.push_str(&format!(
            "| `{key}` | `{needed}` | {} |\n",
            cells.join(" | ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Routes that take no admin token: license keys or nothing.
    const NOT_ADMIN: &[&str] = &[
        keys::VALIDATE,
        keys::HEARTBEAT,
        keys::JWKS,
        keys::HEALTH,
        keys::USAGE,
        keys::USAGE_STATS,
        keys::WORKFLOW_EXECUTE,
        keys::WORKFLOW_EXECUTION,
    ];

    #[test]
    fn every_route_is_either_public_or_has_exactly_one_role() {
        // The console's pages take a session, not a bearer token; the console checks each
        // page's and action's role itself (`functions/console`, by the same `Role` order).
        for key in keys::ALL.iter().filter(|k| !k.contains(" /console")) {
            let listed = ROLES.iter().filter(|(k, _)| k == key).count();
            let expected = usize::from(!NOT_ADMIN.contains(key));
            assert_eq!(listed, expected, "{key}: roles listed {listed} times");
        }
        assert!(ROLES.iter().all(|(k, _)| keys::ALL.contains(k)));
    }

    /// `x-nectar-role` of every operation in `docs/openapi.yaml` (line-based: the file keeps
    /// paths at two spaces, methods at four, operation fields at six).
    fn spec_roles() -> BTreeMap<String, String> {
        let spec =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml"))
                .expect("docs/openapi.yaml");
        let mut found = BTreeMap::new();
        let (mut path, mut method) = (String::new(), String::new());
        for line in spec.lines() {
            if let Some(p) = line.strip_prefix("  /").and_then(|l| l.strip_suffix(':')) {
                path = format!("/{p}");
            } else if let Some(m) = line
                .strip_prefix("    ")
                .and_then(|l| l.strip_suffix(':'))
                .filter(|m| ["get", "post", "put", "patch", "delete"].contains(m))
            {
                method = m.to_uppercase();
            } else if let Some(role) = line.strip_prefix("      x-nectar-role: ") {
                found.insert(format!("{method} {path}"), role.trim().to_owned());
            } else if line == "components:" {
                break;
            }
        }
        found
    }

    #[test]
    fn the_openapi_spec_states_the_same_role_on_every_admin_operation() {
        let code: BTreeMap<String, String> = ROLES
            .iter()
            .map(|(k, r)| ((*k).to_owned(), r.as_str().to_owned()))
            .collect();
        assert_eq!(
            spec_roles(),
            code,
            "x-nectar-role in docs/openapi.yaml vs ROLES"
        );
    }

    #[test]
    fn the_readme_role_matrix_matches_the_code() {
        const README: &str = include_str!("../../../README.md");
        let expected = render_matrix();
        let found = README
            .split_once("<!-- roles:begin -->")
            .and_then(|(_, rest)| rest.split_once("<!-- roles:end -->"))
            .map(|(table, _)| table.trim());
        assert!(
            found == Some(expected.trim()),
            "README.md's role matrix (between <!-- roles:begin --> and <!-- roles:end -->) is \
             out of date; paste this between the markers:\n\n{expected}"
        );
    }

    #[test]
    fn a_forbidden_answer_names_the_role_needed_and_the_callers() {
        let e = ApiError::forbidden(Role::Admin, Role::Viewer);
        assert_eq!((e.status, e.code), (StatusCode::FORBIDDEN, "FORBIDDEN"));
        assert_eq!(
            e.message,
            "this route needs the `admin` role; you are `viewer`"
        );
    }
}
