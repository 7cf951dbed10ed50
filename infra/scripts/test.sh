#!/usr/bin/env bash
# `make test` (and CI): formatting, lints, template/OpenAPI checks, then every test — unit, handler,
# memory and emulator layers, end-to-end over HTTP — against an emulator and the functions behind
# `cargo lambda watch`, started here on free ports (an emulator given in AWS_ENDPOINT_URL is used
# instead).
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
# Debian's Chromium and the browser tests' npm packages (quick when present) install beside the
# build; the console's browser test waits for them at the end.
nectar_log "browser test tools (in the background)"
bash infra/scripts/browser.sh >"$work/browser-install.log" 2>&1 &
browser_pid=$!
pids+=("$browser_pid")
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
# Every binary and test in one build, so each crate is compiled once, with one feature set: the
# functions the end-to-end tests call are these binaries (the workspace's features include the
# test-only `test-util` modules, which add code the functions never call). Letting
# `cargo lambda watch` build each function itself would compile `shared` and every function again
# with each function's own feature set, one function at a time.
nectar_log "build"
cargo build --workspace --bins --tests --examples --quiet

if [[ -z ${AWS_ENDPOINT_URL:-} ]]; then
  port=$(nectar_free_port)
  nectar_log "starting the AWS emulator on port $port"
  nectar_start_emulator "$port" "$work/moto.log"
  pids+=("$NECTAR_EMULATOR_PID")
fi

admin="$CARGO_TARGET_DIR/debug/nectar-admin"
NECTAR_E2E_ADMIN_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
ADMIN_TOKEN_SHA256=$(printf '%s' "$NECTAR_E2E_ADMIN_TOKEN" | "$admin" hash-token | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])')
# The console sits behind the local edge here (see functions/console/src/web.rs, `Edge`).
export CONSOLE_LOCAL_EDGE=true
export ADMIN_TOKEN_SHA256 RUST_LOG=${RUST_LOG:-warn}
# The emulator on this loaded 2-core machine answers far slower than DynamoDB: give the
# functions' request-path AWS calls 10 s instead of 0.9 s (the production deadline is tested
# against a hung endpoint in the handler tests).
export NECTAR_AWS_OPERATION_TIMEOUT_MS=10000
# Workflow `http` nodes may call the tests' own local servers (never the internet).
export WORKFLOW_HTTP_ALLOWED_HOSTS=127.0.0.1 WORKFLOW_HTTP_ALLOW_PLAIN_HTTP=true \
  WORKFLOW_HTTP_ALLOW_PRIVATE_NETWORKS=true

# bootstrap_stack NAME: a stack's own table, keys, queue and topic (into $work/NAME.json), and
# its configuration exported for the functions started next.
bootstrap_stack() {
  local name=$1
  # maxReceiveCount 2 (AWS stack: 5) so a poison message reaches the DLQ within seconds.
  TOKEN_ISSUER=nectar-e2e "$admin" bootstrap --table "$name" --key-alias "alias/$name" \
    --usage-queue "$name" --events-topic "$name" --max-receive-count 2 >"$work/$name.json"
  export TABLE_NAME=$name SIGNING_KEY_ID=alias/$name TOKEN_ISSUER=nectar-e2e \
    LEASE_SIGNING_KEY_ID=$(stack "$name" LEASE_SIGNING_KEY_ID) \
    USAGE_QUEUE_URL=$(stack "$name" USAGE_QUEUE_URL) EVENTS_TOPIC_ARN=$(stack "$name" EVENTS_TOPIC_ARN)
}
stack() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/$1.json" "$2"; }

# serve_stack NAME INSTANCES: the functions (INSTANCES of each, as Lambda scales, so concurrency
# tests race) behind `cargo lambda watch`, the API's edge in front, the SQS relay; sets stack_url.
serve_stack() {
  local name=$1 instances=$2 watch_port http_port fn instance deadline
  watch_port=$(nectar_free_port)
  nectar_log "starting $name: the functions behind cargo lambda watch on port $watch_port"
  # `cargo lambda watch` serves template.yaml's paths (the router in Cargo.toml) and the Invoke
  # API, and queues each request until an instance of its function asks for it on the Lambda
  # runtime API. The instances are the binaries just built; they inherit the exported
  # configuration of the stack.
  RUST_LOG=warn setsid cargo lambda watch --only-lambda-apis --invoke-address 127.0.0.1 \
    --invoke-port "$watch_port" >"$work/$name-watch.log" 2>&1 &
  pids+=("$!")
  # (Any HTTP request would queue for a function instance that does not exist yet: wait for the port.)
  deadline=$((SECONDS + 60))
  until (: >"/dev/tcp/127.0.0.1/$watch_port") 2>/dev/null; do
    if ((SECONDS > deadline)); then
      cat "$work/$name-watch.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  local fn_pids=()
  for dir in functions/*/; do
    fn=$(basename "$dir")
    for ((instance = 1; instance <= instances; instance++)); do
      AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:$watch_port/.rt/$fn AWS_LAMBDA_FUNCTION_NAME=$fn \
        AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512 \
        setsid "$CARGO_TARGET_DIR/debug/$fn" >"$work/$name-fn-$fn-$instance.log" 2>&1 &
      pids+=("$!")
      fn_pids+=("$!")
    done
  done
  # The API's edge, as API Gateway is to the functions (see infra/admin/src/front.rs): every
  # HTTP request of the tests goes through it.
  http_port=$(nectar_free_port)
  setsid "$admin" front --listen "127.0.0.1:$http_port" --upstream "http://127.0.0.1:$watch_port" \
    >"$work/$name-front.log" 2>&1 &
  pids+=("$!")
  deadline=$((SECONDS + 30))
  until (: >"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null; do
    if ((SECONDS > deadline)); then
      cat "$work/$name-front.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  # A function that cannot start (bad configuration) would leave its requests queued forever.
  if ! curl -s -o /dev/null --max-time 60 "http://127.0.0.1:$http_port/health"; then
    tail -n 5 "$work"/"$name"-fn-*.log >&2
    exit 1
  fi
  sleep 1
  for pid in "${fn_pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "a function of $name exited at start:" >&2
      tail -n 5 "$work"/"$name"-fn-*.log >&2
      exit 1
    fi
  done
  # The SQS → usage-processor trigger, as AWS would run it (short visibility timeout for tests).
  setsid "$admin" relay-sqs --queue-url "$USAGE_QUEUE_URL" --invoke-url "http://127.0.0.1:$watch_port" \
    --visibility-timeout 2 >"$work/$name-relay.log" 2>&1 &
  pids+=("$!")
  stack_url=http://127.0.0.1:$http_port
}

suffix=$(python3 -c 'import uuid; print(uuid.uuid4().hex[:12])')
# The contract's stack: schemathesis creates, suspends, revokes and disables whatever it finds
# (lists included), so it gets a stack of its own, one instance per function.
contract_url=
if [[ ${NECTAR_SCHEMATHESIS:-1} != 0 || -n ${CI:-} ]]; then
  bootstrap_stack "contract-$suffix"
  serve_stack "contract-$suffix" 1
  contract_url=$stack_url
  # A license with every feature, whose key schemathesis' hooks put in the client routes' requests.
  customer=$(curl -sf -X POST "$contract_url/api/admin/customers" -H "Authorization: Bearer $NECTAR_E2E_ADMIN_TOKEN" \
    -d '{"name":"Contract","email":"contract@nectar.example"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["customer"]["id"])')
  NECTAR_CONTRACT_LICENSE_KEY=$(curl -sf -X POST "$contract_url/api/admin/licenses" -H "Authorization: Bearer $NECTAR_E2E_ADMIN_TOKEN" \
    -d "{\"customerId\":\"$customer\",\"plan\":\"enterprise\",\"limits\":{\"installations\":1000}}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["licenseKey"])')
  # A daily metrics snapshot, so the dashboard routes answer 200 (not only 404 NO_METRICS_YET).
  "$admin" metrics --table "contract-$suffix" >/dev/null
fi
# The end-to-end stack: its own table, key and queue.
bootstrap_stack "e2e-$suffix"
USAGE_DLQ_URL=$(stack "e2e-$suffix" USAGE_DLQ_URL)
python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))["ROOT_JWKS"], open(sys.argv[2], "w"))' \
  "$work/e2e-$suffix.json" "$work/roots.jwks.json"
serve_stack "e2e-$suffix" 4
http_port=${stack_url##*:}

export NECTAR_E2E_URL=http://127.0.0.1:$http_port NECTAR_E2E_ADMIN_TOKEN NECTAR_E2E_SIGNING_KEY=$SIGNING_KEY_ID \
  NECTAR_E2E_LEASE_KEY=$LEASE_SIGNING_KEY_ID NECTAR_E2E_ROOT_KEY=$(stack "e2e-$suffix" ROOT_KEY_ID) \
  NECTAR_E2E_ROOT_JWKS=$work/roots.jwks.json \
  NECTAR_E2E_ISSUER=$TOKEN_ISSUER NECTAR_E2E_TABLE=$TABLE_NAME \
  NECTAR_E2E_USAGE_QUEUE_URL=$USAGE_QUEUE_URL NECTAR_E2E_USAGE_DLQ_URL=$USAGE_DLQ_URL \
  NECTAR_E2E_EVENTS_TOPIC_ARN=$EVENTS_TOPIC_ARN
# The functions' configuration must not leak into the tests' own processes.
unset NECTAR_AWS_OPERATION_TIMEOUT_MS TABLE_NAME SIGNING_KEY_ID LEASE_SIGNING_KEY_ID TOKEN_ISSUER ADMIN_TOKEN_SHA256 USAGE_QUEUE_URL EVENTS_TOPIC_ARN \
  WORKFLOW_HTTP_ALLOWED_HOSTS WORKFLOW_HTTP_ALLOW_PLAIN_HTTP WORKFLOW_HTTP_ALLOW_PRIVATE_NETWORKS

# The contract: schemathesis (pinned in env.sh) checks every operation of docs/openapi.yaml
# against the running stack — every check, deterministic generation, a bounded example budget —
# beside the tests (it waits mostly on the stack). Zero failures required. Its hooks
# (infra/schemathesis/hooks.py) bridge the two rules JSON Schema cannot state. One worker:
# CPython 3.11's parser is not thread-safe under hypothesis' lambda introspection ("AST
# constructor recursion depth mismatch" with two). NECTAR_SCHEMATHESIS=0 skips it while
# developing; CI always runs it.
st_pid=
if [[ -n $contract_url ]]; then
  nectar_log "schemathesis --checks all against the contract stack (in the background)"
  (
    cd "$work" && PYTHONPATH=$NECTAR_ROOT/infra/schemathesis SCHEMATHESIS_HOOKS=hooks \
      NECTAR_CONTRACT_LICENSE_KEY=$NECTAR_CONTRACT_LICENSE_KEY NECTAR_CONTRACT_ADMIN_TOKEN=$NECTAR_E2E_ADMIN_TOKEN \
      st --config-file "$NECTAR_ROOT/infra/schemathesis/schemathesis.toml" \
      run "$NECTAR_ROOT/docs/openapi.yaml" --url "$contract_url" \
      --checks all --max-examples "${NECTAR_SCHEMATHESIS_EXAMPLES:-10}" --workers 1 \
      --generation-deterministic --no-color >"$work/schemathesis.log" 2>&1
  ) &
  st_pid=$!
  pids+=("$st_pid")
fi

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
    --no-fail-fast --failure-output final --status-level fail --final-status-level slow 2>&1 | tee "$work/test.log"
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
if [[ -n $st_pid ]]; then
  st_status=0
  wait "$st_pid" || st_status=$?
  if ((st_status != 0)); then cat "$work/schemathesis.log"; else tail -n 25 "$work/schemathesis.log"; fi
  if ((st_status != 0)); then
    echo "schemathesis found failures (exit $st_status): the spec and the server disagree" >&2
    ((status == 0)) && status=$st_status
  fi
fi
# The console in headless Chromium, on the end-to-end stack once the other tests are done with it
# (the demo book it seeds would change what their listings see): sign-in per role, the actions,
# every page clean under the CSP, charts drawn, axe, screenshots under tests/browser/screenshots/.
if [[ -z ${NECTAR_TEST_ARGS:-} && ${NECTAR_BROWSER:-1} != 0 ]]; then
  nectar_log "the console in headless Chromium (tests/browser/console.mjs)"
  browser_status=0
  if ! wait "$browser_pid"; then
    cat "$work/browser-install.log" >&2
    browser_status=1
  else
    "$admin" seed-demo --table "$NECTAR_E2E_TABLE" >"$work/seed.log" 2>&1 || browser_status=$?
    console_token() {
      "$admin" operator create --name "console-$1-$suffix" --role "$1" --table "$NECTAR_E2E_TABLE" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
    }
    if ((browser_status == 0)); then
      CONSOLE_URL=$NECTAR_E2E_URL CONSOLE_TOKEN_ADMIN=$(console_token admin) \
        CONSOLE_TOKEN_SUPPORT=$(console_token support) CONSOLE_TOKEN_VIEWER=$(console_token viewer) \
        node tests/browser/console.mjs 2>&1 | tee "$work/browser.log"
      browser_status=${PIPESTATUS[0]}
    else
      cat "$work/seed.log" >&2
    fi
  fi
  grep -E '^browser: ' "$work/browser.log" 2>/dev/null | sed 's/^/==> /' >&2 || true
  ((status == 0)) && status=$browser_status
fi
set -e
# One closing line for the whole run: nextest's summary plus every `cargo test` binary's result.
awk '/^test result:/ { p += $4; f += $6 }
     / Summary \[/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i - 1);
                                                 if ($i ~ /^failed/) f += $(i - 1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$work/test.log"
if ((status != 0)); then
  echo "---- last lines of cargo lambda watch and the functions ----" >&2
  tail -n 40 "$work/e2e-$suffix-watch.log" >&2
  tail -n 5 "$work"/e2e-"$suffix"-fn-*.log >&2
  echo "---- last lines of the SQS relay ----" >&2
  tail -n 20 "$work/e2e-$suffix-relay.log" >&2
fi
exit "$status"
