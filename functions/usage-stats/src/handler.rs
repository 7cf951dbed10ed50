//! Usage statistics: per entitled feature, the period's total, limit, remaining and daily series.
//! Customers ask with their key (`POST /api/usage/stats`, so the key never sits in a URL or an
//! access log); operators by license id (`GET /api/admin/licenses/{licenseId}/usage?period=`).

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::api::{UsageStatsAnswer, UsageStatsRequest, UsageStatsResponse, parse_period};
use shared::config::AdminAuth;
use shared::domain::ports::{
    Clock, InstallationRegistry, LicenseReader, OperatorDirectory, UsageLedger,
};
use shared::domain::{DomainError, LicenseId};
use shared::http::{self, ApiError};
use shared::service::usage::{authorize, gauges, statistics};
use shared::token::KeyRing;

/// The license's own statistics (license key in the body) or any license's (admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    OwnStats,
    LicenseUsage,
}

const ROUTES: &[(&str, Route)] = &[
    (http::keys::USAGE_STATS, Route::OwnStats),
    (http::keys::LICENSE_USAGE, Route::LicenseUsage),
];

/// What the handler needs.
pub struct Deps<S> {
    /// Trusted public keys.
    pub ring: KeyRing,
    /// The bootstrap token's check (operators' tokens are looked up in `store`).
    pub auth: AdminAuth,
    /// License and counter reads; operator tokens.
    pub store: S,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<S>(deps: &Deps<S>, req: Request) -> Result<Response<Body>, Error>
where
    S: LicenseReader + UsageLedger + InstallationRegistry + OperatorDirectory,
{
    Ok(http::respond(run(deps, &req).await))
}

async fn run<S>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: LicenseReader + UsageLedger + InstallationRegistry + OperatorDirectory,
{
    let now = deps.clock.now();
    let matched = http::route(req, ROUTES)?;
    let (license, period) = if matched.route == Route::OwnStats {
        let body = http::parse_json::<UsageStatsRequest>(req)?;
        let period = parse_period(body.period.as_deref(), now)?;
        (
            authorize(&deps.ring, &deps.store, &body.license_key, now).await?,
            period,
        )
    } else {
        http::authorize(req, &matched, &deps.auth, &deps.store).await?;
        let id: LicenseId = matched.id("licenseId")?;
        let params = req.query_string_parameters();
        let period = parse_period(params.first("period"), now)?;
        let license = deps
            .store
            .license(&id)
            .await
            .map_err(DomainError::from)?
            .ok_or(DomainError::LicenseNotFound)?;
        (license, period)
    };
    let usage = statistics(&deps.store, &license, period).await?;
    let gauges = gauges(&deps.store, &license).await?;
    Ok(http::json(
        StatusCode::OK,
        &UsageStatsResponse::new(&license, period, &usage, &gauges),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::ports::UsageLedger;
    use shared::domain::{EventId, Feature, Plan, UsageEvent};
    use shared::testing::{
        FixedClock, Issued, MemoryStack, TEST_ADMIN_TOKEN, admin_auth, apigw_v2, body_json,
    };
    use time::macros::datetime;

    const NOW: time::OffsetDateTime = datetime!(2026-06-15 12:00 UTC);

    /// A professional license with 5 workflow units counted on 3 June and 2 on 14 June.
    async fn arrange() -> (
        MemoryStack,
        Issued,
        Deps<shared::adapters::memory::MemoryStore>,
    ) {
        let stack = MemoryStack::new();
        let issued = stack.issue(Plan::Professional, NOW, |_| {}).await;
        let event = |id: &str, quantity, occurred_at| UsageEvent {
            license_id: issued.license.id.clone(),
            event_id: EventId::parse(id).expect("id"),
            feature: Feature::parse("workflows").expect("feature"),
            quantity,
            occurred_at,
            metadata: None,
        };
        stack
            .store
            .record(
                &[
                    event("a", 5, datetime!(2026-06-03 09:00 UTC)),
                    event("b", 2, datetime!(2026-06-14 09:00 UTC)),
                ],
                NOW,
            )
            .await
            .expect("recorded");
        let deps = Deps {
            ring: stack.key_ring().await,
            auth: admin_auth(),
            store: stack.store.clone(),
            clock: Arc::new(FixedClock(NOW)),
        };
        (stack, issued, deps)
    }

    fn workflows(body: &serde_json::Value) -> &serde_json::Value {
        body["features"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["feature"] == "workflows"))
            .unwrap_or_else(|| panic!("workflows in {body}"))
    }

    #[tokio::test]
    async fn a_license_reads_its_own_month_with_the_daily_series() {
        // Arrange
        let (_, issued, deps) = arrange().await;
        let req = apigw_v2(
            include_str!("../../../tests/fixtures/apigw_v2/usage_stats.json"),
            &[("__LICENSE_KEY__", issued.key.expose())],
        );
        // Act
        let resp = handle(&deps, req).await.expect("always Ok");
        // Assert
        let body = body_json(&resp);
        assert_eq!(resp.status(), StatusCode::OK, "{body}");
        assert_eq!(body["period"], "2026-06");
        let w = workflows(&body);
        assert_eq!((&w["used"], &w["limit"]), (&7.into(), &10_000.into()));
        let daily: Vec<u64> = serde_json::from_value(w["daily"].clone()).expect("daily");
        assert_eq!(daily.len(), 30, "one entry per day of June");
        assert_eq!((daily[2], daily[13], daily.iter().sum::<u64>()), (5, 2, 7));
    }

    #[tokio::test]
    async fn an_operator_reads_any_license_by_id_and_period() {
        // Arrange
        let (_, issued, deps) = arrange().await;
        let fixture = include_str!("../../../tests/fixtures/apigw_v2/license_usage.json");
        let ask = |token: &str, period: &str| {
            apigw_v2(
                fixture,
                &[
                    ("__ADMIN_TOKEN__", token),
                    ("__LICENSE_ID__", issued.license.id.as_str()),
                    ("__PERIOD__", period),
                ],
            )
        };
        // Act
        let june = handle(&deps, ask(TEST_ADMIN_TOKEN, "2026-06"))
            .await
            .expect("Ok");
        let may = handle(&deps, ask(TEST_ADMIN_TOKEN, "2026-05"))
            .await
            .expect("Ok");
        let guess = handle(&deps, ask("guess", "2026-06")).await.expect("Ok");
        let bad = handle(&deps, ask(TEST_ADMIN_TOKEN, "June"))
            .await
            .expect("Ok");
        // Assert
        let june_body = body_json(&june);
        assert_eq!(june.status(), StatusCode::OK, "{june_body}");
        assert_eq!(workflows(&june_body)["used"], 7);
        assert_eq!(workflows(&body_json(&may))["used"], 0);
        assert_eq!(guess.status(), StatusCode::UNAUTHORIZED);
        let bad_body = body_json(&bad);
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST, "{bad_body}");
        assert_eq!(
            (&bad_body["error"]["code"], &bad_body["error"]["field"]),
            (&"INVALID_FIELD".into(), &"period".into())
        );
    }
}
