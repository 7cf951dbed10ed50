#!/usr/bin/env bash
# Lints template.yaml (cfn-lint, sam validate --lint) and docs/openapi.yaml (openapi-spec-validator,
# then a cross-check: same routes and admin functions as the template, examples valid against
# their schemas, every error response an Error). Offline; any warning fails.
#
# The tools are pinned and installed once into a venv under
# ${NECTAR_TOOLS_DIR:-$HOME/.cache/nectar/tools}/venv-lint; it is rebuilt when a tool is missing or
# the pins below change. Needs Python >= 3.10 with venv and pip (set PYTHON to choose one).
set -euo pipefail

# aws-sam-cli 1.170.0 requires cfn-lint >=1.52,<1.59 (so not the 1.51 some images preinstall).
CFN_LINT_VERSION=1.58.0
SAM_CLI_VERSION=1.170.0
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
PINS="cfn-lint==$CFN_LINT_VERSION aws-sam-cli==$SAM_CLI_VERSION openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tools_dir=${NECTAR_TOOLS_DIR:-$HOME/.cache/nectar/tools}
venv=$tools_dir/venv-lint
stamp=$venv/.nectar-pins

fail() {
  echo "lint-template: $*" >&2
  exit 1
}

venv_ready() {
  local bin
  for bin in python cfn-lint sam openapi-spec-validator; do
    [[ -x $venv/bin/$bin ]] || return 1
  done
  [[ -f $stamp && $(<"$stamp") == "$PINS" ]]
}

pick_python() {
  local candidate
  for candidate in ${PYTHON:-} python3 python3.13 python3.12 python3.11 python3.10; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

install_tools() {
  local python log
  python=$(pick_python) || fail "needs Python >= 3.10 (set PYTHON=/path/to/python3)"
  log=$tools_dir/venv-lint-install.log
  echo "lint-template: installing $PINS into $venv (once)" >&2
  rm -rf "$venv"
  if ! "$python" -m venv "$venv" >"$log" 2>&1; then
    # Debian's python3 may lack the venv module (python3-venv); virtualenv from PyPI does the job.
    rm -rf "$venv"
    echo "lint-template: '$python -m venv' unavailable; using virtualenv from PyPI" >&2
    if ! { "$python" -m pip install --disable-pip-version-check --target "$tools_dir/virtualenv" virtualenv &&
      PYTHONPATH="$tools_dir/virtualenv" "$python" -m virtualenv "$venv"; } >>"$log" 2>&1; then
      cat "$log" >&2
      fail "could not create a virtualenv (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
  fi
  # shellcheck disable=SC2086 # PINS is a list of requirement specifiers.
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check --no-input $PINS >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    fail "pip install failed (full log: $log)"
  fi
  printf '%s' "$PINS" >"$stamp"
}

mkdir -p "$tools_dir"
if ! venv_ready; then
  # Two runs on a fresh machine (e.g. parallel CI steps) must not build the venv at the same time.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$tools_dir/venv-lint.lock"
    flock 9
  fi
  venv_ready || install_tools
fi

cd "$repo_root"
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
# Nothing here calls AWS; SAM CLI only wants credentials to exist.
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-AKIAIOSFODNN7EXAMPLE}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY}
export SAM_CLI_TELEMETRY=0
# Keep SAM CLI's state (and its weekly version-check stamp) with the tools, not in ~/.aws-sam.
export __SAM_CLI_APP_DIR=$tools_dir/sam-cli-app-dir

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# run LABEL COMMAND...: quiet on success (one line), the tool's output and a failure otherwise.
run() {
  local label=$1 status=0
  shift
  "$@" >"$out" 2>&1 || status=$?
  if ((status != 0)); then
    cat "$out" >&2
    fail "$label failed (exit $status)"
  fi
}

# Informational checks (I*) too: the template is kept free of those as well.
run cfn-lint "$venv/bin/cfn-lint" --include-checks I -- template.yaml
[[ ! -s $out ]] || { cat "$out" >&2; fail "cfn-lint printed findings"; }
echo "cfn-lint $CFN_LINT_VERSION: template.yaml clean (errors, warnings and informational checks)"

run "sam validate" "$venv/bin/sam" validate --lint --template template.yaml
grep -q 'is a valid SAM Template' "$out" || { cat "$out" >&2; fail "sam validate: unexpected output"; }
echo "sam validate --lint (aws-sam-cli $SAM_CLI_VERSION): template.yaml valid"

run openapi-spec-validator "$venv/bin/openapi-spec-validator" docs/openapi.yaml
echo "openapi-spec-validator $OPENAPI_SPEC_VALIDATOR_VERSION: docs/openapi.yaml valid OpenAPI 3.1"

run "openapi cross-check" "$venv/bin/python" - template.yaml docs/openapi.yaml <<'PY'
import sys
from urllib.parse import quote

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from samtranslator.yaml_helper import yaml_parse  # understands !Ref, !Sub, ...

template_path, spec_path = sys.argv[1], sys.argv[2]
with open(template_path) as f:
    template = yaml_parse(f.read())
with open(spec_path) as f:
    spec = yaml.safe_load(f)

problems = []
BASE = "urn:nectar:openapi"
# The whole spec is one JSON Schema resource, so its "#/components/..." refs resolve.
registry = Registry().with_resource(BASE, Resource(contents=spec, specification=DRAFT202012))


def pointer(*parts):
    return "/" + "/".join(quote(str(p).replace("~", "~0").replace("/", "~1"), safe="") for p in parts)


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise SystemExit(f"external $ref not supported: {ref}")
        node = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def check_examples(where, media, schema_ptr):
    validator = Draft202012Validator({"$ref": BASE + "#" + schema_ptr}, registry=registry,
                                     format_checker=FormatChecker())
    examples = {name: resolve(ex) for name, ex in (media.get("examples") or {}).items()}
    if "example" in media:
        examples["example"] = {"value": media["example"]}
    if not examples:
        problems.append(f"{where}: no example")
    for name, example in examples.items():
        for err in validator.iter_errors(example["value"]):
            at = "/".join(str(p) for p in err.absolute_path)
            problems.append(f"{where} example {name!r} at /{at}: {err.message}")


# The template's routes, (METHOD, path) -> function package, and the functions given the admin token.
template_routes, template_admin = {}, set()
for res in template["Resources"].values():
    if res.get("Type") != "AWS::Serverless::Function":
        continue
    props = res["Properties"]
    package = props["CodeUri"].rstrip("/").split("/")[-1]
    # The console serves HTML pages to browsers, not the JSON API: the README documents it,
    # its own tests (handler and browser) check it, and the spec leaves it out.
    if package == "console":
        continue
    if "ADMIN_TOKEN_SHA256" in ((props.get("Environment") or {}).get("Variables") or {}):
        template_admin.add(package)
    for event in (props.get("Events") or {}).values():
        event_props = event.get("Properties") or {}
        if event["Type"] == "HttpApi" and "Path" in event_props:  # no Path: the $default route
            method = event_props.get("Method")
            if not isinstance(method, str):
                problems.append(f"{package}: HttpApi event {event_props['Path']}: Method must be one string")
                continue
            template_routes[(method.upper(), event_props["Path"])] = package

spec_routes, spec_admin = {}, set()
for path, item in spec["paths"].items():
    for method, op in item.items():
        if method not in {"get", "put", "post", "delete", "patch", "head", "options"}:
            continue
        where = f"{method.upper()} {path}"
        function = op.get("x-nectar-function")
        spec_routes[(method.upper(), path)] = function
        if op.get("security", spec.get("security")):
            spec_admin.add(function)
        if "requestBody" in op:
            body = op["requestBody"]
            body_ptr = body["$ref"][1:] if "$ref" in body else pointer("paths", path, method, "requestBody")
            for ctype, media in resolve(body)["content"].items():
                check_examples(f"{where} request", media, body_ptr + pointer("content", ctype, "schema"))
        for status, response in op["responses"].items():
            resp_ptr = response["$ref"][1:] if "$ref" in response else pointer("paths", path, method, "responses", status)
            response = resolve(response)
            content = response.get("content") or {}
            if int(status) >= 400:
                if list(content) != ["application/json"] or content["application/json"].get("schema") != {"$ref": "#/components/schemas/Error"}:
                    problems.append(f"{where} {status}: an error response must be application/json with schema Error")
            if status == "503" and "Retry-After" not in (response.get("headers") or {}):
                problems.append(f"{where} 503: no Retry-After header")
            for ctype, media in content.items():
                check_examples(f"{where} {status}", media, resp_ptr + pointer("content", ctype, "schema"))

for route in sorted(set(template_routes) | set(spec_routes)):
    in_template, in_spec = template_routes.get(route), spec_routes.get(route)
    if in_template != in_spec:
        problems.append(f"route {' '.join(route)}: template.yaml -> {in_template}, docs/openapi.yaml -> {in_spec}")
if template_admin != spec_admin:
    problems.append(f"admin functions differ: template.yaml (ADMIN_TOKEN_SHA256) {sorted(template_admin)}, "
                    f"docs/openapi.yaml (security) {sorted(spec_admin)}")

print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
echo "openapi cross-check: docs/openapi.yaml matches template.yaml routes, examples valid"
