#!/usr/bin/env bash
# `make test` (and CI): formatting, lints, template/OpenAPI checks, then every test — unit, handler,
# adapter-against-emulator and end-to-end over HTTP — against an emulator and a `cargo lambda
# watch` this script starts on free ports (an emulator given in AWS_ENDPOINT_URL is used instead).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$NECTAR_ROOT"
nectar_tools

work=$(mktemp -d)
pids=()
cleanup() {
  local pid
  # Each service runs in its own process group (setsid), so its children go with it.
  for pid in "${pids[@]}"; do
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

nectar_log "cargo fmt --check"
cargo fmt --all -- --check
# The template and spec linters are Python and mostly wait on I/O: they run beside clippy.
nectar_log "template.yaml and docs/openapi.yaml (in the background)"
bash infra/scripts/lint-template.sh >"$work/lint.log" 2>&1 &
lint_pid=$!
pids+=("$lint_pid")
nectar_log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
if ! wait "$lint_pid"; then
  cat "$work/lint.log" >&2
  exit 1
fi
cat "$work/lint.log" >&2
# Test binaries and the admin CLI. (Not the function binaries: `cargo lambda watch` builds each
# one on its own, with that function's own feature set, so a workspace-wide build of them would
# be thrown away.)
nectar_log "build"
cargo test --workspace --no-run --quiet
cargo build -p nectar-admin --quiet

if [[ -z ${AWS_ENDPOINT_URL:-} ]]; then
  port=$(nectar_free_port)
  nectar_log "starting the AWS emulator on port $port"
  nectar_start_emulator "$port" "$work/moto.log"
  pids+=("$NECTAR_EMULATOR_PID")
fi

# The end-to-end stack: its own table, key and queue, and a fresh admin token.
suffix=$(python3 -c 'import uuid; print(uuid.uuid4().hex[:12])')
admin="$CARGO_TARGET_DIR/debug/nectar-admin"
export TABLE_NAME=e2e-$suffix
# maxReceiveCount 2 (AWS stack: 5) so a poison message reaches the DLQ within seconds.
"$admin" bootstrap --table "$TABLE_NAME" --key-alias "alias/e2e-$suffix" --usage-queue "e2e-$suffix" \
  --events-topic "e2e-$suffix" \
  --max-receive-count 2 >"$work/stack.json"
stack() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/stack.json" "$1"; }
USAGE_QUEUE_URL=$(stack USAGE_QUEUE_URL)
USAGE_DLQ_URL=$(stack USAGE_DLQ_URL)
EVENTS_TOPIC_ARN=$(stack EVENTS_TOPIC_ARN)
export USAGE_QUEUE_URL EVENTS_TOPIC_ARN
export SIGNING_KEY_ID=alias/e2e-$suffix TOKEN_ISSUER=nectar-e2e
NECTAR_E2E_ADMIN_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
ADMIN_TOKEN_SHA256=$(printf '%s' "$NECTAR_E2E_ADMIN_TOKEN" | "$admin" hash-token | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])')
export ADMIN_TOKEN_SHA256 RUST_LOG=${RUST_LOG:-warn}
# Workflow `http` nodes may call the tests' own local servers (never the internet).
export WORKFLOW_HTTP_ALLOWED_HOSTS=127.0.0.1 WORKFLOW_HTTP_ALLOW_PLAIN_HTTP=true \
  WORKFLOW_HTTP_ALLOW_PRIVATE_NETWORKS=true

http_port=$(nectar_free_port)
nectar_log "starting cargo lambda watch on port $http_port"
# --concurrency: several instances per function, as Lambda scales, so concurrency tests race.
watch_args=$(nectar_watch_args)
# shellcheck disable=SC2086 # one word per flag
RUST_LOG=warn setsid cargo lambda watch --ignore-changes --concurrency 4 --invoke-address 127.0.0.1 \
  --invoke-port "$http_port" $watch_args >"$work/watch.log" 2>&1 &
pids+=("$!")
if ! nectar_wait_http "http://127.0.0.1:$http_port/health" 120; then
  cat "$work/watch.log" >&2
  exit 1
fi

# The SQS → usage-processor trigger, as AWS would run it (short visibility timeout for tests).
setsid "$admin" relay-sqs --queue-url "$USAGE_QUEUE_URL" --invoke-url "http://127.0.0.1:$http_port" \
  --visibility-timeout 2 >"$work/relay.log" 2>&1 &
pids+=("$!")

# Start every function once now: `cargo lambda watch` builds a function on its first request, and
# that build must not wait on the cargo lock that `cargo test` holds.
for route in api/validate api/heartbeat api/revoke api/license/x api/admin/customers \
  api/admin/licenses api/admin/licenses/x/suspend .well-known/jwks.json api/usage api/usage/stats \
  api/workflows/execute; do
  curl -s -o /dev/null --max-time 300 -X POST "http://127.0.0.1:$http_port/$route" || true
done
curl -s -o /dev/null --max-time 300 -X POST -d '{"Records":[]}' \
  "http://127.0.0.1:$http_port/2015-03-31/functions/usage-processor/invocations" || true
# (an unknown job: the function starts, answers an error, and changes nothing)
curl -s -o /dev/null --max-time 300 -X POST -d '{"jobs":["warm-up"]}' \
  "http://127.0.0.1:$http_port/2015-03-31/functions/lifecycle/invocations" || true

export NECTAR_E2E_URL=http://127.0.0.1:$http_port NECTAR_E2E_ADMIN_TOKEN NECTAR_E2E_SIGNING_KEY=$SIGNING_KEY_ID \
  NECTAR_E2E_ISSUER=$TOKEN_ISSUER NECTAR_E2E_TABLE=$TABLE_NAME \
  NECTAR_E2E_USAGE_QUEUE_URL=$USAGE_QUEUE_URL NECTAR_E2E_USAGE_DLQ_URL=$USAGE_DLQ_URL \
  NECTAR_E2E_EVENTS_TOPIC_ARN=$EVENTS_TOPIC_ARN
# The functions' configuration must not leak into the tests' own processes.
unset TABLE_NAME SIGNING_KEY_ID TOKEN_ISSUER ADMIN_TOKEN_SHA256 USAGE_QUEUE_URL EVENTS_TOPIC_ARN \
  WORKFLOW_HTTP_ALLOWED_HOSTS WORKFLOW_HTTP_ALLOW_PLAIN_HTTP WORKFLOW_HTTP_ALLOW_PRIVATE_NETWORKS

# NECTAR_TEST_ARGS narrows the run while developing, e.g. "-p e2e --test agent"; CI runs everything.
read -r -a test_args <<<"${NECTAR_TEST_ARGS:---workspace}"
# Emulator-dependent tests are `#[ignore]`d so plain `cargo test` needs no emulator; run them here.
set +e
if cargo nextest --version >/dev/null 2>&1; then
  # cargo-nextest runs every test binary at once. cargo test runs them one after another, and the
  # end-to-end binaries mostly wait on the emulator and the network, not the CPU — hence more
  # test threads than cores.
  nectar_log "cargo nextest run ${test_args[*]} --run-ignored all (+ doctests)"
  cargo nextest run "${test_args[@]}" --run-ignored all --test-threads "${NECTAR_TEST_THREADS:-8}" \
    --no-fail-fast --failure-output final --status-level fail 2>&1 | tee "$work/test.log"
  status=${PIPESTATUS[0]}
  if [[ -z ${NECTAR_TEST_ARGS:-} ]]; then
    cargo test --workspace --doc 2>&1 | tee -a "$work/test.log"
    doc_status=${PIPESTATUS[0]}
    ((status == 0)) && status=$doc_status
  fi
else
  nectar_log "cargo test ${test_args[*]} -- --include-ignored"
  cargo test "${test_args[@]}" -- --include-ignored 2>&1 | tee "$work/test.log"
  status=${PIPESTATUS[0]}
fi
set -e
# One closing line for the whole run: nextest's summary plus every `cargo test` binary's result.
awk '/^test result:/ { p += $4; f += $6 }
     / Summary \[/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i - 1);
                                                 if ($i ~ /^failed/) f += $(i - 1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$work/test.log"
if ((status != 0)); then
  echo "---- last lines of cargo lambda watch ----" >&2
  tail -n 40 "$work/watch.log" >&2
  echo "---- last lines of the SQS relay ----" >&2
  tail -n 20 "$work/relay.log" >&2
fi
exit "$status"
