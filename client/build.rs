//! Compiles Nectar's root public keys into the client: the JWKS file named by
//! `NECTAR_TRUST_ROOTS_FILE` (default `trust/roots.jwks.json`, written by
//! `nectar-admin trust roots` from the root KMS key) is copied into `OUT_DIR` and included by
//! `token.rs`. A release build with no root key fails here, unless it is an explicitly named
//! development or test build (features `dev-trust`, `test-util`): a release agent that trusts
//! nothing would refuse every customer, and one that trusted a runtime setting would trust anyone.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=NECTAR_TRUST_ROOTS_FILE");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let path = std::env::var_os("NECTAR_TRUST_ROOTS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("trust/roots.jwks.json"));
    println!("cargo:rerun-if-changed={}", path.display());
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => panic!("NECTAR_TRUST_ROOTS_FILE {}: {e}", path.display()),
    };
    let json: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => panic!("{} is not JSON: {e}", path.display()),
    };
    let keys = json["keys"].as_array().map_or(0, Vec::len);
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let dev = std::env::var_os("CARGO_FEATURE_DEV_TRUST").is_some()
        || std::env::var_os("CARGO_FEATURE_TEST_UTIL").is_some();
    if keys == 0 && release && !dev {
        panic!(
            "{} holds no root key: a release build of the installation client must carry \
             Nectar's root public keys. Export them with `nectar-admin trust roots --root-key \
             <alias>` and build with NECTAR_TRUST_ROOTS_FILE=<that file>, or build with the \
             `dev-trust` feature for local development",
            path.display()
        );
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("roots.jwks.json");
    if let Err(e) = std::fs::write(&out, text) {
        panic!("{}: {e}", out.display());
    }
}
