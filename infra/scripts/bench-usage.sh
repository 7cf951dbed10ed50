#!/usr/bin/env bash
# `make bench-usage`: usage-processor writes per event and throughput on a realistic mix, against
# an emulator this script starts (see shared/examples/usage_bench.rs for the mix).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$NECTAR_ROOT"
nectar_tools
work=$(mktemp -d)
port=$(nectar_free_port)
nectar_start_emulator "$port" "$work/moto.log"
trap 'kill -- "-$NECTAR_EMULATOR_PID" 2>/dev/null || true; rm -rf "$work"' EXIT
cargo run --quiet -p shared --example usage_bench
