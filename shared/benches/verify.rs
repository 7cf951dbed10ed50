//! Offline license-key verification cost: what `validate` and `heartbeat` spend on crypto per
//! request (no KMS, no I/O). Run with `make bench` or `cargo bench -p shared --bench verify`.

use criterion::{Criterion, criterion_group, criterion_main};
use shared::adapters::local::LocalSigner;
use shared::domain::ports::TokenSigner;
use shared::domain::{CustomerId, LicenseId, Plan};
use shared::token::{KeyRing, LicenseClaims, LicenseKey, TokenKind, sign_jwt};
use std::hint::black_box;

fn key_and_ring() -> (LicenseKey, KeyRing) {
    let signer = LocalSigner::random("bench-key");
    let id = LicenseId::parse("NECTAR-ENTERPRISE-2026-7K2M9QXA").expect("valid");
    let claims = LicenseClaims {
        iss: "nectar-cloud".into(),
        typ: TokenKind::License,
        lic: id.product_line().into(),
        jti: id,
        cid: CustomerId::from_uuid(uuid::Uuid::new_v4()),
        iat: 1_790_000_000,
        exp: 1_890_000_000,
        feat: Plan::Enterprise.default_features().into_iter().collect(),
        limits: Plan::Enterprise.default_limits(),
        domain_restrictions: vec![],
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let token = runtime
        .block_on(sign_jwt(&signer, TokenKind::License, &claims))
        .expect("sign");
    let der = signer.spki_der();
    let ring =
        KeyRing::from_spki_der("nectar-cloud", [(signer.kid(), der.as_slice())]).expect("ring");
    (LicenseKey::new(token), ring)
}

fn verification(c: &mut Criterion) {
    let (key, ring) = key_and_ring();
    assert!(ring.verify_license(&key).is_ok());
    let mut tampered = key.expose().to_owned();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    let tampered = LicenseKey::new(tampered);
    let garbage = LicenseKey::new("not-a-token");

    c.bench_function("verify_license/valid ES256 key", |b| {
        b.iter(|| ring.verify_license(black_box(&key)))
    });
    c.bench_function("verify_license/bad signature", |b| {
        b.iter(|| ring.verify_license(black_box(&tampered)))
    });
    c.bench_function("verify_license/malformed", |b| {
        b.iter(|| ring.verify_license(black_box(&garbage)))
    });
}

criterion_group!(benches, verification);
criterion_main!(benches);
