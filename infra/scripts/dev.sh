#!/usr/bin/env bash
# `make dev`: the whole stack locally. Starts the AWS emulator (unless one already answers on the
# port), creates table, signing key and queues, then serves every function with
# `cargo lambda watch` at template.yaml's paths. Ctrl-C stops everything it started.
#
#   NECTAR_AWS_PORT   emulator port          (default 4566)
#   NECTAR_HTTP_PORT  API port               (default 9000)
#   NECTAR_WATCH_PORT cargo lambda watch     (default API port + 1)
#   NECTAR_ADMIN_TOKEN admin bearer token    (default: generated once, kept in .nectar/admin-token)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$NECTAR_ROOT"
nectar_tools

aws_port=${NECTAR_AWS_PORT:-4566}
http_port=${NECTAR_HTTP_PORT:-9000}
# cargo lambda watch (the functions and the Lambda Invoke API), behind the front on $http_port.
watch_port=${NECTAR_WATCH_PORT:-$((http_port + 1))}
mkdir -p .nectar

if curl -s -o /dev/null "http://127.0.0.1:$aws_port/moto-api/"; then
  nectar_log "using the emulator already on port $aws_port"
  export AWS_ENDPOINT_URL=http://127.0.0.1:$aws_port
else
  nectar_log "starting the AWS emulator on port $aws_port (log: .nectar/moto.log)"
  nectar_start_emulator "$aws_port" .nectar/moto.log
  trap 'kill -- "-$NECTAR_EMULATOR_PID" 2>/dev/null || true' EXIT
fi

nectar_log "building"
cargo build --workspace --quiet
# The agent for this local stack: a development build (`dev-trust`), the only kind that accepts
# the stack's root key from NECTAR_DEV_TRUST_ROOTS; a release agent refuses that setting.
cargo build -p nectar-agent --features nectar-client/dev-trust --quiet \
  --target-dir "$CARGO_TARGET_DIR/dev-agent"

if [[ -z ${NECTAR_ADMIN_TOKEN:-} ]]; then
  [[ -s .nectar/admin-token ]] || (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >.nectar/admin-token)
  NECTAR_ADMIN_TOKEN=$(<.nectar/admin-token)
fi
admin="$CARGO_TARGET_DIR/debug/nectar-admin"
export TABLE_NAME=${TABLE_NAME:-nectar-licenses}
"$admin" bootstrap --table "$TABLE_NAME" >.nectar/stack.json
SIGNING_KEY_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["SIGNING_KEY_ID"])' .nectar/stack.json)
LEASE_SIGNING_KEY_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["LEASE_SIGNING_KEY_ID"])' .nectar/stack.json)
# The stack's root public key, for development agents (NECTAR_DEV_TRUST_ROOTS).
python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))["ROOT_JWKS"], open(sys.argv[2], "w"))' \
  .nectar/stack.json .nectar/dev-roots.jwks.json
USAGE_QUEUE_URL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["USAGE_QUEUE_URL"])' .nectar/stack.json)
EVENTS_TOPIC_ARN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["EVENTS_TOPIC_ARN"])' .nectar/stack.json)
ADMIN_TOKEN_SHA256=$(printf '%s' "$NECTAR_ADMIN_TOKEN" | "$admin" hash-token | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])')
# The console sits behind the local edge here (see functions/console/src/web.rs, `Edge`).
export CONSOLE_LOCAL_EDGE=true
export SIGNING_KEY_ID LEASE_SIGNING_KEY_ID USAGE_QUEUE_URL EVENTS_TOPIC_ARN ADMIN_TOKEN_SHA256 RUST_LOG=${RUST_LOG:-info}

cat <<BANNER

  Nectar Cloud is starting on  http://127.0.0.1:$http_port
  admin token:                 $NECTAR_ADMIN_TOKEN
  AWS emulator:                $AWS_ENDPOINT_URL   (table $TABLE_NAME, key $SIGNING_KEY_ID)

  agent (development build):  NECTAR_DEV_TRUST_ROOTS=$NECTAR_ROOT/.nectar/dev-roots.jwks.json \\
        NECTAR_LICENSE_SERVER_URL=http://127.0.0.1:$http_port NECTAR_LICENSE_KEY=<key> \\
        $CARGO_TARGET_DIR/dev-agent/debug/nectar-agent --state-dir .nectar/agent

  try:  curl http://127.0.0.1:$http_port/health
        curl -X POST http://127.0.0.1:$http_port/api/admin/customers \\
             -H "Authorization: Bearer $NECTAR_ADMIN_TOKEN" -d '{"name":"Acme","email":"ops@acme.com"}'

BANNER

# The SQS → usage-processor trigger (AWS runs it for us; locally this relay does).
"$admin" relay-sqs --queue-url "$USAGE_QUEUE_URL" --invoke-url "http://127.0.0.1:$watch_port" \
  --visibility-timeout 30 >.nectar/relay.log 2>&1 &
relay_pid=$!
# The EventBridge schedule (template.yaml: rate(15 minutes)) → the lifecycle function.
(
  while sleep "${NECTAR_LIFECYCLE_EVERY:-900}"; do
    curl -s -o /dev/null -X POST --data-binary @infra/scripts/scheduled-event.json \
      "http://127.0.0.1:$watch_port/2015-03-31/functions/lifecycle/invocations" || true
  done
) &
tick_pid=$!

# The API's edge on $http_port, as API Gateway is to the functions (infra/admin/src/front.rs).
"$admin" front --listen "127.0.0.1:$http_port" --upstream "http://127.0.0.1:$watch_port" \
  >.nectar/front.log 2>&1 &
front_pid=$!
trap 'kill $relay_pid $tick_pid $front_pid 2>/dev/null || true; [[ -n ${NECTAR_EMULATOR_PID:-} ]] && kill -- "-$NECTAR_EMULATOR_PID" 2>/dev/null || true' EXIT

# RUST_LOG above is the functions' level; the emulator's own router logs only warnings.
watch_args=$(nectar_watch_args)
# shellcheck disable=SC2086 # one word per flag
RUST_LOG=${NECTAR_WATCH_LOG:-warn} cargo lambda watch --concurrency 4 --invoke-address 127.0.0.1 \
  --invoke-port "$watch_port" $watch_args
