#!/usr/bin/env bash
# `make bench`: offline license-key verification (pure CPU; no emulator needed).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$NECTAR_ROOT"
cargo bench -p shared --bench verify "$@"
