//! The fleet listings end to end, over HTTP against the stack `make test` starts (and through
//! `nectar-admin`): support finds a customer by name and email, pages through their licenses,
//! sees an installation's seat, and finds the installation refused a seat on the "needs
//! attention" list. The stack is shared with other tests, so every query is scoped to what this
//! test made (its own customer, its own license).

use e2e::{Api, cli};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every page of `path` (a listing with its query), following `next`.
async fn every_page(api: &Api, path: &str) -> (Vec<Value>, usize) {
    let (mut items, mut pages, mut cursor): (Vec<Value>, usize, Option<String>) =
        (Vec::new(), 0, None);
    loop {
        let url = match &cursor {
            None => path.to_owned(),
            Some(c) => format!("{path}&cursor={c}"),
        };
        let (status, body) = api.admin_get(&url).await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        pages += 1;
        items.extend(body["items"].as_array().cloned().unwrap_or_default());
        match body["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (items, pages),
        }
        assert!(pages < 500, "{path}: the listing never ends");
    }
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn support_finds_a_customer_pages_their_licenses_and_sees_the_refused_installation() {
    let api = Api::from_env();
    // Arrange: a customer with a name and email no other test uses, and three one-seat licenses.
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let name = format!("Fleet Test {tag} GmbH");
    let email = format!("ops-{tag}@fleet.example");
    let (status, body) = api
        .admin_post(
            "/api/admin/customers",
            json!({"name": name, "email": email}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let cid = body["customer"]["id"].as_str().expect("id").to_owned();
    let mut keys = Vec::new();
    for plan in ["starter", "professional", "enterprise"] {
        let (status, body) = api
            .admin_post(
                "/api/admin/licenses",
                json!({"customerId": cid, "plan": plan, "limits": {"installations": 1}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        keys.push((
            body["license"]["id"].as_str().expect("id").to_owned(),
            body["licenseKey"].as_str().expect("key").to_owned(),
        ));
    }

    // Customers: by a case-insensitive name prefix, and by exact email in another case.
    let prefix = format!("fleet test {tag}").replace(' ', "%20");
    let (found, _) = every_page(
        &api,
        &format!("/api/admin/fleet/customers?namePrefix={prefix}&limit=1"),
    )
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], cid.as_str());
    let (found, _) = every_page(
        &api,
        &format!(
            "/api/admin/fleet/customers?email={}&limit=5",
            email.to_uppercase().replace('@', "%40")
        ),
    )
    .await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["name"], name.as_str());

    // Licenses: the customer's three, two per page.
    let (licenses, pages) = every_page(
        &api,
        &format!("/api/admin/fleet/licenses?customerId={cid}&limit=2"),
    )
    .await;
    let ids: Vec<&str> = licenses.iter().filter_map(|l| l["id"].as_str()).collect();
    let mut expected: Vec<&str> = keys.iter().map(|(id, _)| id.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected, "by license id");
    assert!(
        pages >= 2,
        "three licenses in pages of two: {pages} page(s)"
    );
    assert!(licenses.iter().all(|l| l["activeInstallations"] == 0));
    // Another filter's cursor is refused with a stable code.
    let (_, first) = api
        .admin_get(&format!(
            "/api/admin/fleet/licenses?customerId={cid}&limit=2"
        ))
        .await;
    let next = first["next"].as_str().expect("a second page");
    let (status, body) = api
        .admin_get(&format!(
            "/api/admin/fleet/licenses?status=revoked&cursor={next}"
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_CURSOR");

    // One seat: the first machine takes it, the second is refused.
    let (lid, key) = &keys[0];
    let beat = api.heartbeat(key, "fleet-node-a").await;
    assert_eq!(beat["code"], "VALID", "{beat}");
    let beat = api.heartbeat(key, "fleet-node-b").await;
    assert_eq!(beat["code"], "INSTALLATION_LIMIT", "{beat}");

    // Installations of the license: the seated one, with its version.
    let (installations, _) = every_page(
        &api,
        &format!("/api/admin/fleet/installations?licenseId={lid}"),
    )
    .await;
    assert_eq!(installations.len(), 1, "{installations:?}");
    assert_eq!(installations[0]["id"], "fleet-node-a");
    assert_eq!(installations[0]["licenseId"], lid.as_str());
    assert_eq!(installations[0]["status"], "active");
    assert_eq!(installations[0]["version"], "2.3.1");

    // Needs attention: the refused machine, once however often it retries.
    api.heartbeat(key, "fleet-node-b").await;
    let (flags, _) = every_page(&api, "/api/admin/fleet/attention?kind=seat_limit&limit=200").await;
    let ours: Vec<&Value> = flags
        .iter()
        .filter(|f| f["licenseId"] == lid.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0]["installationId"], "fleet-node-b");
    assert!(
        ours[0]["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("refused a seat: all 1 seats in use"),
        "{}",
        ours[0]
    );

    // The same listing from the CLI, page for page.
    let page = cli(&[
        "licenses",
        "--filter",
        &format!("customerId={cid}"),
        "--limit",
        "2",
    ]);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2), "{page}");
    let next = page["next"].as_str().expect("next").to_owned();
    let page = cli(&[
        "licenses",
        "--filter",
        &format!("customerId={cid}"),
        "--limit",
        "2",
        "--cursor",
        &next,
    ]);
    assert_eq!(page["items"][0]["id"], expected[2]);
    let page = cli(&["installations", "--filter", &format!("licenseId={lid}")]);
    assert_eq!(page["items"][0]["id"], "fleet-node-a");
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn the_daily_snapshot_feeds_the_dashboard_once_a_day_and_the_month_exports_as_csv() {
    let api = Api::from_env();
    // Arrange: a SaaS license billed 25.00 USD a month, allowed 100 workflow runs, that ran 250.
    let (license, key) = api
        .issue(
            "starter",
            json!({
                "limits": {"workflows_per_month": 100},
                "contract": {"channel": "saas", "interval": "monthly", "currency": "USD", "price": 2500}
            }),
        )
        .await;
    let lid = license["id"].as_str().expect("id").to_owned();
    let events = json!([
        {"eventId": "csv-1", "feature": "workflows", "quantity": 100},
        {"eventId": "csv-2", "feature": "workflows", "quantity": 100},
        {"eventId": "csv-3", "feature": "workflows", "quantity": 50}
    ]);
    let (status, body) = api.usage(&key, events).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(api.wait_used(&key, "workflows", 250, 120).await, 250);

    // The metrics job records today's snapshot; run twice, today still has one.
    for _ in 0..2 {
        let (status, body) = api.invoke("lifecycle", &json!({"jobs": ["metrics"]})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, snapshot) = api.admin_get("/api/admin/metrics").await;
    assert_eq!(status, StatusCode::OK, "{snapshot}");
    let today = time::OffsetDateTime::now_utc().date();
    let today = format!(
        "{:04}-{:02}-{:02}",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    assert_eq!(snapshot["date"], today.as_str());
    assert!(snapshot["licenses"]["byStatus"]["active"].as_u64() >= Some(1));
    let usd = snapshot["revenue"]
        .as_array()
        .and_then(|r| r.iter().find(|c| c["currency"] == "USD"))
        .expect("USD figures");
    assert!(
        usd["mrrByChannel"]["saas"].as_u64() >= Some(2_500),
        "our SaaS contract counts: {usd}"
    );
    assert!(usd["overage"].as_u64() >= Some(30), "{usd}");
    let (status, history) = api
        .admin_get(&format!(
            "/api/admin/metrics/history?from={today}&to={today}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(
        history["days"].as_array().map(Vec::len),
        Some(1),
        "{history}"
    );
    assert_eq!(history["days"][0]["date"], today.as_str());

    // The month's usage as CSV: 150 over the allowance, at 2.00 per 1,000 = 0.30.
    let period = &today[..7];
    let (status, csv, headers) = api
        .admin_get_text(&format!("/api/admin/reports/usage?period={period}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/csv"),
        "{headers:?}"
    );
    let row = csv
        .lines()
        .find(|l| l.contains(lid.as_str()))
        .unwrap_or_else(|| panic!("a row for {lid}:\n{csv}"));
    assert!(
        row.ends_with(",starter,workflows,250,100,150,30,USD"),
        "{row}"
    );
    assert!(csv.starts_with(
        "period,licenseId,customerId,plan,feature,used,included,overage,amountMinor,currency\r\n"
    ));

    // The CLI records the snapshot too.
    let snap = cli(&["metrics"]);
    assert_eq!(snap["date"], today.as_str());
}
