# Sourced by the other scripts: installs the pinned local tools once (moto server, cargo-lambda)
# into a venv kept outside the clone, and sets the shared environment. Safe to source repeatedly.
# Needs: Rust (cargo) and Python >= 3.10 with pip/venv. Nothing else is assumed on the machine.

NECTAR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NECTAR_TOOLS_DIR=${NECTAR_TOOLS_DIR:-$HOME/.cache/nectar/tools}
# A persistent target dir outside the clone: a fresh clone (CI) rebuilds incrementally.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/nectar/target}
export AWS_REGION=${AWS_REGION:-us-east-1}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-$AWS_REGION}
# The emulator accepts any credentials; the SDK only needs some.
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}

# schemathesis (and the hypothesis it draws examples with) pinned so a fixed seed makes the same cases.
NECTAR_TOOL_PINS="moto[server]==5.2.1 cargo-lambda==1.9.2 schemathesis==4.32.5 hypothesis==6.170.17"

nectar_log() { printf '\033[1m==> [%ss] %s\033[0m\n' "$SECONDS" "$*" >&2; }

# nectar_venv DIR: creates a virtualenv. Debian's python3 may lack the venv module (package
# python3-venv); then virtualenv, installed from PyPI into the tools dir, does the same job.
nectar_venv() {
  local dir=$1
  if python3 -m venv "$dir" 2>/dev/null; then
    return 0
  fi
  rm -rf "$dir"
  nectar_log "python3 -m venv is unavailable; using virtualenv from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check --target "$NECTAR_TOOLS_DIR/virtualenv" virtualenv
  PYTHONPATH="$NECTAR_TOOLS_DIR/virtualenv" python3 -m virtualenv --quiet "$dir"
}

nectar_tools_ready() {
  local venv=$NECTAR_TOOLS_DIR/venv
  [[ -x $venv/bin/moto_server && -x $venv/bin/cargo-lambda && -f $venv/.pins && $(<"$venv/.pins") == "$NECTAR_TOOL_PINS" ]]
}

nectar_tools() {
  local venv=$NECTAR_TOOLS_DIR/venv
  mkdir -p "$NECTAR_TOOLS_DIR"
  if ! nectar_tools_ready; then
    # `make dev` and `make test` started together must not build the same venv twice.
    exec 8>"$NECTAR_TOOLS_DIR/venv.lock"
    command -v flock >/dev/null 2>&1 && flock 8
    if ! nectar_tools_ready; then
      nectar_log "installing $NECTAR_TOOL_PINS into $venv (once)"
      rm -rf "$venv"
      nectar_venv "$venv"
      # shellcheck disable=SC2086 # a list of requirement specifiers
      "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input $NECTAR_TOOL_PINS
      printf '%s' "$NECTAR_TOOL_PINS" >"$venv/.pins"
    fi
    exec 8>&-
  fi
  export PATH="$venv/bin:$PATH"
}

nectar_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# nectar_wait_http URL SECONDS: waits until URL answers at all (any HTTP status).
nectar_wait_http() {
  local url=$1 deadline=$((SECONDS + $2))
  until curl -s -o /dev/null "$url"; do
    if ((SECONDS > deadline)); then
      echo "timed out waiting for $url" >&2
      return 1
    fi
    sleep 0.3
  done
}

# nectar_start_emulator PORT LOG: starts moto server on 127.0.0.1:PORT, with DynamoDB requests
# serialized as DynamoDB itself applies them (see moto_server.py); sets NECTAR_EMULATOR_PID.
nectar_start_emulator() {
  local port=$1 log=$2
  setsid "$NECTAR_TOOLS_DIR/venv/bin/python" "$NECTAR_ROOT/infra/scripts/moto_server.py" 127.0.0.1 "$port" >"$log" 2>&1 &
  NECTAR_EMULATOR_PID=$!
  nectar_wait_http "http://127.0.0.1:$port/moto-api/" 30
  export AWS_ENDPOINT_URL=http://127.0.0.1:$port
}

# nectar_watch_args: the --env-var flags that give every function the stack's configuration.
nectar_watch_args() {
  local v
  for v in AWS_ENDPOINT_URL AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY TABLE_NAME \
    SIGNING_KEY_ID LEASE_SIGNING_KEY_ID TOKEN_ISSUER ADMIN_TOKEN_SHA256 NECTAR_AWS_OPERATION_TIMEOUT_MS ACTIVATIONS_PER_HOUR USAGE_QUEUE_URL USAGE_GROUP_CONCURRENCY \
    EVENTS_TOPIC_ARN HEARTBEAT_INTERVAL_SECONDS DEPLOYED_VERSION WORKFLOW_HTTP_ALLOWED_HOSTS \
    WORKFLOW_HTTP_ALLOW_PLAIN_HTTP WORKFLOW_HTTP_ALLOW_PRIVATE_NETWORKS CONSOLE_LOCAL_EDGE RUST_LOG; do
    [[ -n ${!v:-} ]] && printf -- '--env-var %s=%s ' "$v" "${!v}"
  done
}
