//! End-to-end over HTTP: the functions served by `cargo lambda watch` at template.yaml's paths,
//! backed by the AWS emulator. `make test` starts both and exports `NECTAR_E2E_*`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use e2e::Api;
use p256::pkcs8::{EncodePublicKey, LineEnding};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::adapters::kms::KmsSigner;
use shared::testing::{create_signing_key, emulator};
use shared::token::{TokenKind, sign_jwt};

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn payload(key: &str) -> Value {
    let part = key.split('.').nth(1).expect("payload part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("b64")).expect("json")
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn issue_validate_heartbeat_revoke_then_validate_says_revoked() {
    let api = Api::from_env();
    // Issue.
    let (license, key) = api.issue("professional", json!({"validDays": 30})).await;
    let id = license["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("NECTAR-PROFESSIONAL-"), "{id}");
    // Validate.
    let v = api
        .validate(
            &key,
            "inst-a",
            json!({"feature": "integrations", "version": "2.3.1"}),
        )
        .await;
    assert_eq!(
        (v["valid"].as_bool(), v["code"].as_str()),
        (Some(true), Some("VALID")),
        "{v}"
    );
    assert_eq!(v["license"]["id"], id.as_str());
    assert_eq!(v["license"]["limits"]["installations"], 3);
    // Heartbeat registers the installation and says when to come back.
    let hb = api.heartbeat(&key, "inst-a").await;
    assert_eq!(
        (hb["ok"].as_bool(), hb["code"].as_str()),
        (Some(true), Some("VALID")),
        "{hb}"
    );
    assert_eq!(hb["installation"]["id"], "inst-a");
    assert_eq!(hb["heartbeat"]["intervalSeconds"], 3600);
    // ... and hands out a lease bound to it, which the published JWKS verifies.
    let lease = hb["lease"]["token"].as_str().expect("a lease");
    let claims = api.verify_with_jwks(lease).await;
    assert_eq!(
        (&claims["typ"], &claims["lid"], &claims["iid"]),
        (&json!("lease"), &json!(id), &json!("inst-a"))
    );
    let again = api.heartbeat(&key, "inst-a").await;
    assert_eq!(again["lease"]["token"], hb["lease"]["token"], "reused");
    // Revoke.
    let (status, r) = api
        .admin_post(
            "/api/revoke",
            json!({"licenseId": id, "reason": "chargeback"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(
        (r["changed"].as_bool(), r["license"]["status"].as_str()),
        (Some(true), Some("revoked"))
    );
    // The very next validate and heartbeat say so.
    let v = api.validate(&key, "inst-a", json!({})).await;
    assert_eq!(
        (v["valid"].as_bool(), v["code"].as_str()),
        (Some(false), Some("REVOKED")),
        "{v}"
    );
    let hb = api.heartbeat(&key, "inst-a").await;
    assert_eq!(hb["code"], "REVOKED", "{hb}");
    assert!(hb.get("lease").is_none(), "no lease once revoked: {hb}");
    // The admin lookup shows the installation and the audit trail.
    let customer = license["customerId"].as_str().expect("customer");
    let (status, look) = api.admin_get(&format!("/api/license/{customer}")).await;
    assert_eq!(status, StatusCode::OK, "{look}");
    let l = &look["licenses"][0];
    assert_eq!(l["status"], "revoked");
    assert_eq!(l["installations"][0]["id"], "inst-a");
    let actions: Vec<&str> = l["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "license.issued",
            "installation.activated",
            "license.revoked"
        ]
    );
    assert_eq!(l["audit"][1]["actor"], "installation:inst-a");
    assert_eq!(l["audit"][2]["reason"], "chargeback");
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn a_key_past_its_expiry_validates_as_expired() {
    let api = Api::from_env();
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    // Whole seconds, so the instant the server stores is exactly this one.
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(2))
        .replace_nanosecond(0)
        .expect("whole second");
    let (_, key) = api
        .issue(
            "starter",
            json!({"expiresAt": soon.format(rfc3339).expect("format")}),
        )
        .await;
    // Before the expiry instant by the server's own clock, the key is valid — however slow the
    // machine, the verdict must agree with the server time it reports.
    let v = api.validate(&key, "i-1", json!({})).await;
    let ts = time::OffsetDateTime::parse(v["ts"].as_str().expect("ts"), rfc3339).expect("ts");
    let expected = if ts < soon { "VALID" } else { "EXPIRED" };
    assert_eq!(v["code"], expected, "{v}");
    let wait = soon - time::OffsetDateTime::now_utc() + time::Duration::milliseconds(1100);
    tokio::time::sleep(wait.try_into().unwrap_or_default()).await;
    let v = api.validate(&key, "i-1", json!({})).await;
    assert_eq!(
        (v["valid"].as_bool(), v["code"].as_str()),
        (Some(false), Some("EXPIRED")),
        "{v}"
    );
    assert_eq!(api.heartbeat(&key, "i-1").await["code"], "EXPIRED");
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn a_suspended_license_says_suspended_until_reinstated() {
    let api = Api::from_env();
    let (license, key) = api.issue("starter", json!({})).await;
    let id = license["id"].as_str().expect("id");
    let (s, body) = api
        .admin_post(
            &format!("/api/admin/licenses/{id}/suspend"),
            json!({"reason": "unpaid invoice"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        api.validate(&key, "i-1", json!({})).await["code"],
        "SUSPENDED"
    );
    assert_eq!(api.heartbeat(&key, "i-1").await["code"], "SUSPENDED");
    let (s, body) = api
        .admin_post(
            &format!("/api/admin/licenses/{id}/reinstate"),
            json!({"reason": "paid"}),
        )
        .await;
    assert_eq!(
        (s, body["changed"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{body}"
    );
    assert_eq!(api.validate(&key, "i-1", json!({})).await["code"], "VALID");
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn a_domain_outside_the_restrictions_is_a_mismatch() {
    let api = Api::from_env();
    let (_, key) = api
        .issue(
            "enterprise",
            json!({"domainRestrictions": ["*.acme.example", "portal.acme.io"]}),
        )
        .await;
    for (domain, code) in [
        ("eu.acme.example", "VALID"),
        ("PORTAL.acme.io.", "VALID"),
        ("evilacme.example", "DOMAIN_MISMATCH"),
        ("acme.example", "DOMAIN_MISMATCH"),
    ] {
        let v = api.validate(&key, "i-1", json!({"domain": domain})).await;
        assert_eq!(v["code"], code, "{domain}: {v}");
    }
    assert_eq!(
        api.validate(&key, "i-1", json!({})).await["code"],
        "DOMAIN_MISMATCH"
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn a_feature_outside_the_plan_is_not_entitled() {
    let api = Api::from_env();
    let (_, key) = api.issue("starter", json!({})).await;
    let v = api
        .validate(&key, "i-1", json!({"feature": "analytics"}))
        .await;
    assert_eq!(
        (v["valid"].as_bool(), v["code"].as_str()),
        (Some(false), Some("FEATURE_NOT_ENTITLED")),
        "{v}"
    );
    assert_eq!(
        api.validate(&key, "i-1", json!({"feature": "workflows"}))
            .await["code"],
        "VALID"
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn concurrent_first_heartbeats_admit_exactly_the_installation_limit() {
    // Arrange: 12 new installations, 3 seats.
    let api = Api::from_env();
    let (license, key) = api
        .issue("professional", json!({"limits": {"installations": 3}}))
        .await;
    // Act: all first heartbeats at once.
    let beats = futures::future::join_all((0..12).map(|i| {
        let (api, key) = (&api, &key);
        async move { api.heartbeat(key, &format!("node-{i}")).await }
    }))
    .await;
    // Assert
    let admitted: Vec<&Value> = beats.iter().filter(|b| b["code"] == "VALID").collect();
    let refused = beats
        .iter()
        .filter(|b| b["code"] == "INSTALLATION_LIMIT")
        .count();
    assert_eq!((admitted.len(), refused), (3, 9), "{beats:?}");
    let customer = license["customerId"].as_str().expect("customer");
    let (_, look) = api.admin_get(&format!("/api/license/{customer}")).await;
    assert_eq!(look["licenses"][0]["activeInstallations"], 3);
    // Seat holders keep validating; the others are told why not.
    let holder = admitted[0]["installation"]["id"].as_str().expect("id");
    assert_eq!(api.validate(&key, holder, json!({})).await["code"], "VALID");
    assert_eq!(
        api.validate(&key, "node-new", json!({})).await["code"],
        "INSTALLATION_LIMIT"
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn support_releases_a_dead_machines_seat_and_the_replacement_gets_in() {
    // Arrange: one seat, held by the old machine; its replacement is refused.
    let api = Api::from_env();
    let (license, key) = api
        .issue("professional", json!({"limits": {"installations": 1}}))
        .await;
    let id = license["id"].as_str().expect("id");
    assert_eq!(api.heartbeat(&key, "old-box").await["code"], "VALID");
    assert_eq!(
        api.heartbeat(&key, "new-box").await["code"],
        "INSTALLATION_LIMIT"
    );

    // Act: support releases the old machine's seat.
    let path = format!("/api/admin/licenses/{id}/installations/old-box/release");
    let (status, released) = api
        .admin_post(
            &path,
            json!({"reason": "old-box decommissioned, ticket 4411"}),
        )
        .await;

    // Assert: released at once; the replacement's next heartbeat takes the seat.
    assert_eq!(status, StatusCode::OK, "{released}");
    assert_eq!(released["changed"], true);
    assert_eq!(released["installation"]["status"], "inactive");
    assert_eq!(api.heartbeat(&key, "new-box").await["code"], "VALID");
    // The release is in the audit trail with its reason; a second release changes nothing; an
    // unknown installation is a 404 with its own code.
    let (_, page) = api
        .admin_get(&format!("/api/admin/licenses/{id}/audit"))
        .await;
    let entries = page["entries"].as_array().expect("entries");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "installation.released"
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("ticket 4411"))),
        "{page}"
    );
    let (status, again) = api.admin_post(&path, json!({"reason": "again"})).await;
    assert_eq!(
        (status, &again["changed"]),
        (StatusCode::OK, &json!(false)),
        "{again}"
    );
    let (status, missing) = api
        .admin_post(
            &format!("/api/admin/licenses/{id}/installations/never-seen/release"),
            json!({"reason": "typo"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    assert_eq!(missing["error"]["code"], "INSTALLATION_NOT_FOUND");
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn tampered_forged_and_foreign_tokens_are_invalid_keys() {
    let api = Api::from_env();
    let (license, key) = api.issue("starter", json!({})).await;
    let parts: Vec<&str> = key.split('.').collect();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
    let mut claims = payload(&key);

    // Edited payload: more seats, same signature.
    claims["limits"]["installations"] = json!(1000);
    let edited = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    // alg: none.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": header["kid"]})),
        parts[1]
    );
    // HS256 keyed with our public key, taken from the published JWKS.
    let (_, jwks, _) = api
        .send(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    let jwk = &jwks["keys"][0];
    assert_eq!(
        jwk["kid"], header["kid"],
        "the JWKS publishes the signing key"
    );
    let mut sec1 = vec![4u8];
    for c in ["x", "y"] {
        sec1.extend(
            URL_SAFE_NO_PAD
                .decode(jwk[c].as_str().expect("coord"))
                .expect("b64"),
        );
    }
    let pem = p256::PublicKey::from_sec1_bytes(&sec1)
        .expect("point")
        .to_public_key_pem(LineEnding::LF)
        .expect("pem");
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = header["kid"].as_str().map(str::to_owned);
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &payload(&key),
        &jsonwebtoken::EncodingKey::from_secret(pem.as_bytes()).expect("hmac"),
    )
    .expect("encode");
    // Signed by another KMS key (same claims).
    let sdk = emulator().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let other = KmsSigner::connect(kms.clone(), &create_signing_key(&kms).await)
        .await
        .expect("other key");
    let foreign = sign_jwt(&other, TokenKind::License, &payload(&key))
        .await
        .expect("sign");
    // Signed by our own key, but typed as a lease.
    let ours = KmsSigner::connect(kms, &api.signing_key)
        .await
        .expect("our key");
    let mut lease_claims = payload(&key);
    lease_claims["typ"] = json!("lease");
    let lease = sign_jwt(&ours, TokenKind::Lease, &lease_claims)
        .await
        .expect("sign");
    // A control: our key re-signing the genuine claims is accepted, so the cases above fail for
    // the reason they name, not for some accident of the harness.
    let resigned = sign_jwt(&ours, TokenKind::License, &payload(&key))
        .await
        .expect("sign");
    assert_eq!(
        api.validate(&resigned, "i-1", json!({})).await["code"],
        "VALID"
    );

    for (name, token) in [
        ("edited payload", edited),
        ("alg none", none),
        ("HS256 with the public key", hs256),
        ("another KMS key", foreign),
        ("lease-typed token", lease),
        ("garbage", "not.a.jwt".to_owned()),
        ("empty", String::new()),
    ] {
        let v = api.validate(&token, "i-1", json!({})).await;
        assert_eq!(
            (v["valid"].as_bool(), v["code"].as_str()),
            (Some(false), Some("INVALID_KEY")),
            "{name}: {v}"
        );
        assert!(
            v.get("license").is_none(),
            "{name}: no license details for an invalid key"
        );
        assert_eq!(
            api.heartbeat(&token, "i-1").await["code"],
            "INVALID_KEY",
            "{name}"
        );
    }
    // The genuine key is untouched by all this.
    assert_eq!(api.validate(&key, "i-1", json!({})).await["code"], "VALID");
    assert_eq!(license["status"], "active");
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn admin_routes_refuse_missing_and_wrong_tokens_alike() {
    let api = Api::from_env();
    let body = json!({"name": "X", "email": "x@example.com"})
        .to_string()
        .into_bytes();
    let mut answers = Vec::new();
    for token in [None, Some("wrong"), Some("")] {
        for (method, path) in [
            (Method::POST, "/api/admin/customers"),
            (Method::POST, "/api/admin/licenses"),
            (Method::POST, "/api/revoke"),
            (
                Method::POST,
                "/api/admin/licenses/NECTAR-STARTER-2026-AAAAAAAA/suspend",
            ),
            (
                Method::GET,
                "/api/license/0b7f3c8e-2f0c-4c1e-9d8a-3b2f1e0d9c8b",
            ),
        ] {
            let (status, v, _) = api
                .send(method.clone(), path, Some(body.clone()), token)
                .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}: {v}"
            );
            answers.push(v);
        }
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "one answer for every failure: {answers:?}"
    );
    assert_eq!(answers[0]["error"]["code"], "UNAUTHORIZED");
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn bad_input_gets_a_stable_4xx_never_a_5xx() {
    let api = Api::from_env();
    let big = format!(
        r#"{{"licenseKey":"{}","installationId":"i"}}"#,
        "a".repeat(70 * 1024)
    );
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "/api/validate",
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
        ),
        (
            "/api/validate",
            b"".to_vec(),
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
        ),
        (
            "/api/validate",
            b"[]".to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
        (
            "/api/validate",
            br#"["key","node-1"]"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
        (
            "/api/validate",
            br#"{"installationId":"i"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
        (
            "/api/validate",
            br#"{"licenseKey":5,"installationId":"i"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
        (
            "/api/validate",
            br#"{"licenseKey":"k","installationId":"i","featur":"x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
        (
            "/api/validate",
            br#"{"licenseKey":"k","installationId":"has space"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
        ),
        (
            "/api/validate",
            br#"{"licenseKey":"k","installationId":"i","domain":"bad_domain"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
        ),
        (
            "/api/validate",
            br#"{"licenseKey":"k","installationId":"i","feature":"Bad Feature"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
        ),
        (
            "/api/validate",
            big.into_bytes(),
            StatusCode::BAD_REQUEST,
            "BODY_TOO_LARGE",
        ),
        (
            "/api/heartbeat",
            br#"{"licenseKey":"k","installationId":"i"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
        (
            "/api/heartbeat",
            br#"{"licenseKey":"k","installationId":"i","version":""}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
        ),
    ];
    for (path, body, status, code) in cases {
        let (s, v, _) = api.send(Method::POST, path, Some(body.clone()), None).await;
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{path} {shown}: {v}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
    }
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn admin_input_errors_name_the_field() {
    let api = Api::from_env();
    let customer = api.new_customer().await;
    let cases = [
        (
            json!({"customerId": customer, "plan": "gold"}),
            StatusCode::BAD_REQUEST,
            "UNKNOWN_PLAN",
        ),
        (
            json!({"customerId": customer, "plan": "starter", "features": ["teleport"]}),
            StatusCode::BAD_REQUEST,
            "UNKNOWN_FEATURE",
        ),
        (
            json!({"customerId": customer, "plan": "starter", "validDays": 0}),
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
        ),
        (
            json!({"customerId": customer, "plan": "starter", "expiresAt": "yesterday"}),
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
        ),
        (
            json!({"customerId": customer, "plan": "starter", "domainRestrictions": ["*"]}),
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
        ),
        (
            json!({"customerId": "not-a-uuid", "plan": "starter"}),
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
        ),
        (
            json!({"customerId": "0b7f3c8e-2f0c-4c1e-9d8a-3b2f1e0d9c8b", "plan": "starter"}),
            StatusCode::NOT_FOUND,
            "CUSTOMER_NOT_FOUND",
        ),
        (
            json!({"customerId": customer, "plan": "starter", "domainRestrictions": vec!["a".repeat(63) + ".example.com"; 50]}),
            StatusCode::BAD_REQUEST,
            "LICENSE_TOO_LARGE",
        ),
    ];
    for (body, status, code) in cases {
        let (s, v) = api.admin_post("/api/admin/licenses", body.clone()).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {v}"
        );
    }
    let (s, v) = api
        .admin_post(
            "/api/revoke",
            json!({"licenseId": "NECTAR-STARTER-2026-ZZZZZZZZ", "reason": "x"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("LICENSE_NOT_FOUND")),
        "{v}"
    );
    let (s, v) = api
        .admin_get("/api/license/0b7f3c8e-2f0c-4c1e-9d8a-3b2f1e0d9c8b")
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("CUSTOMER_NOT_FOUND")),
        "{v}"
    );
    let (s, v) = api
        .admin_post(
            "/api/admin/customers",
            json!({"name": "X", "email": "nope"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("email")),
        "{v}"
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn revoked_is_terminal_and_revoking_again_changes_nothing() {
    let api = Api::from_env();
    let (license, _) = api.issue("starter", json!({})).await;
    let id = license["id"].as_str().expect("id");
    let revoke = json!({"licenseId": id, "reason": "fraud"});
    assert_eq!(
        api.admin_post("/api/revoke", revoke.clone()).await.1["changed"],
        true
    );
    assert_eq!(
        api.admin_post("/api/revoke", revoke).await.1["changed"],
        false
    );
    let (s, v) = api
        .admin_post(
            &format!("/api/admin/licenses/{id}/reinstate"),
            json!({"reason": "oops"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("INVALID_TRANSITION")),
        "{v}"
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn unknown_routes_and_wrong_methods_get_json_errors() {
    let api = Api::from_env();
    let (s, v, _) = api.send(Method::GET, "/api/nothing-here", None, None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("ROUTE_NOT_FOUND")),
        "{v}"
    );
    let (s, v, _) = api.send(Method::GET, "/api/validate", None, None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("METHOD_NOT_ALLOWED")),
        "{v}"
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn health_reports_the_version_and_jwks_verifies_a_key_with_a_standard_library() {
    let api = Api::from_env();
    let (s, health, _) = api.send(Method::GET, "/health", None, None).await;
    assert_eq!((s, health["status"].as_str()), (StatusCode::OK, Some("ok")));
    assert!(health["version"].as_str().is_some_and(|v| !v.is_empty()));

    let (_, key) = api.issue("enterprise", json!({})).await;
    let (s, jwks, headers) = api
        .send(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        headers["cache-control"]
            .to_str()
            .expect("ascii")
            .contains("max-age")
    );
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).expect("a standard JWK set");
    let kid = jsonwebtoken::decode_header(&key)
        .expect("header")
        .kid
        .expect("kid");
    let jwk = set.find(&kid).expect("the key's kid is published");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[api.issuer.as_str()]);
    let data = jsonwebtoken::decode::<Value>(
        &key,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("jwk"),
        &validation,
    )
    .expect("verifies offline");
    assert_eq!(data.claims["typ"], "license");
    assert_eq!(
        data.claims["lic"]
            .as_str()
            .map(|l| l.starts_with("NECTAR-ENTERPRISE-")),
        Some(true)
    );
    for claim in [
        "lic",
        "cid",
        "exp",
        "iat",
        "feat",
        "limits",
        "domain_restrictions",
        "jti",
        "iss",
    ] {
        assert!(data.claims.get(claim).is_some(), "claim {claim}");
    }
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn the_scheduled_lifecycle_run_publishes_an_expiry_warning_that_reaches_a_subscriber() {
    // Arrange: a subscriber on the stack's events topic, and a license with a day left.
    let api = Api::from_env();
    let inbox = shared::testing::Inbox::subscribe(&api.events_topic()).await;
    let (license, _) = api.issue("starter", json!({"validDays": 1})).await;
    let id = license["id"].as_str().expect("id").to_owned();
    let scheduled: Value =
        serde_json::from_str(include_str!("../infra/scripts/scheduled-event.json")).expect("json");
    // Act: what the EventBridge rule sends, twice (the second run must not repeat the warning).
    let (s1, first) = api.invoke("lifecycle", &scheduled).await;
    let (s2, second) = api.invoke("lifecycle", &scheduled).await;
    // Assert
    assert_eq!(
        (s1, s2),
        (StatusCode::OK, StatusCode::OK),
        "{first} {second}"
    );
    // Every sweep, then the daily metrics snapshot (not a sweep of `service::lifecycle`).
    let ran: Vec<&str> = first["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["job"].as_str())
        .collect();
    let mut expected: Vec<&str> = shared::service::lifecycle::Job::ALL
        .iter()
        .map(|j| j.name())
        .collect();
    expected.push("metrics");
    assert_eq!(ran, expected, "{first}");
    let ours: Vec<Value> = inbox
        .drain()
        .await
        .into_iter()
        .filter(|e| e["licenseId"] == id.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(ours[0]["type"], "license.expiry_warning");
    assert_eq!(ours[0]["threshold"], 1);
    assert!(ours[0]["email"].as_str().is_some_and(|e| e.contains('@')));
    assert!(
        ours[0]["idempotencyId"]
            .as_str()
            .is_some_and(|i| i.starts_with(&format!("license.expiry_warning:{id}:")))
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn a_lifecycle_invocation_naming_an_unknown_job_fails_without_running_anything() {
    let api = Api::from_env();
    let (status, body) = api
        .invoke("lifecycle", &json!({"jobs": ["expire-all"]}))
        .await;
    assert_ne!(status, StatusCode::OK, "{body}");
    assert!(body.to_string().contains("unknown job"), "{body}");
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn an_operator_renews_a_license_in_place_and_its_new_key_validates() {
    // Arrange
    let api = Api::from_env();
    let (license, _) = api.issue("starter", json!({"validDays": 1})).await;
    let id = license["id"].as_str().expect("id");
    // Act
    let (status, renewed) = api
        .admin_post(
            &format!("/api/admin/licenses/{id}/renew"),
            json!({"validDays": 400, "reason": "renewal order 1042"}),
        )
        .await;
    let (revoked_status, _) = api
        .admin_post("/api/revoke", json!({"licenseId": id, "reason": "test"}))
        .await;
    let (again, refused) = api
        .admin_post(&format!("/api/admin/licenses/{id}/renew"), json!({}))
        .await;
    // Assert
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert_eq!(renewed["license"]["id"], id);
    assert!(renewed["license"]["expiresAt"].as_str() > license["expiresAt"].as_str());
    let key = renewed["licenseKey"].as_str().expect("a new key");
    let claims = api.verify_with_jwks(key).await;
    assert_eq!(claims["jti"], id);
    assert_eq!(revoked_status, StatusCode::OK);
    assert_eq!(again, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "INVALID_TRANSITION");
}
