#!/usr/bin/env bash
# `make bench`: the CPU benchmarks (no emulator needed), release profile, criterion:
#   shared/benches/verify.rs        offline license-key verification
#   workflow/benches/engine.rs      workflow engine overhead per node (50-node workflow)
#   client/benches/check.rs         nectar-client check(feature) from the cached lease
# Pass criterion arguments through, e.g. `make bench ARGS=--quick` is not needed:
# `bash infra/scripts/bench.sh -- --warm-up-time 1`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$NECTAR_ROOT"
cargo bench -p shared --bench verify "$@"
cargo bench -p nectar-workflow --bench engine "$@"
NECTAR_BENCH_SANDBOX=1 cargo bench -p nectar-workflow --bench engine "$@"
cargo bench -p nectar-client --bench check "$@"
