#!/usr/bin/env bash
# `make bench-console`: each console page's server time (release profile, criterion) on the
# in-memory store holding a demo-sized book — the console's own work, without the emulator.
# Target: under 30 ms p50 per page. Criterion arguments pass through:
# `bash infra/scripts/bench-console.sh -- --warm-up-time 1`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$NECTAR_ROOT"
cargo bench -p console --bench pages "$@"
