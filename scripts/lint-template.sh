#!/usr/bin/env bash
# Lints template.yaml the way CI does: `sam validate --lint`, plain `sam validate` (it catches
# other mistakes, and needs a region), `cfn-lint`, and the checkov security scan that operators'
# pipelines commonly run. Any warning, error or failed check fails the script.
#
# aws-sam-cli pins its own boto3, aws-sam-translator and cfn-lint versions, so both tools live in
# their own virtual environment, .venv-sam/ at the repository root. checkov pins another boto3 (and
# older networkx and packaging than cfn-lint's), so it has its own, .venv-checkov/. Both are
# installed from PyPI on first use (the only network access this script needs; checkov runs with
# --skip-download, so it never calls its vendor's API). Override the versions with SAM_CLI_VERSION /
# CFN_LINT_VERSION / CHECKOV_VERSION, the interpreter with PYTHON.
#
# Usage: scripts/lint-template.sh [template]      (default: template.yaml)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TEMPLATE="${1:-template.yaml}"
SAM_CLI_VERSION="${SAM_CLI_VERSION:-1.170.0}"
CFN_LINT_VERSION="${CFN_LINT_VERSION:-1.58.0}"
CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv-sam"
STAMP="$VENV/.installed-aws-sam-cli-$SAM_CLI_VERSION-cfn-lint-$CFN_LINT_VERSION"
CHECKOV_VENV="$ROOT/.venv-checkov"
CHECKOV_STAMP="$CHECKOV_VENV/.installed-checkov-$CHECKOV_VERSION"

# No usage telemetry. (SAM CLI's weekly "update available" check may print a notice; it is
# not a lint finding and does not fail the script.)
export SAM_CLI_TELEMETRY=0
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '==> %s\n' "$*"; }

[[ -f "$TEMPLATE" ]] || { echo "lint-template: $TEMPLATE not found" >&2; exit 2; }

# Creates virtual environment $1 with the pinned requirements $3..., unless stamp $2 says it is
# already there (then nothing touches the network).
ensure_venv() {
  local venv="$1" stamp="$2"; shift 2
  if [[ -f "$stamp" ]] && "$venv/bin/python" -c '' 2>/dev/null; then
    return 0
  fi
  command -v "$PYTHON" >/dev/null || { echo "lint-template: $PYTHON not found (set PYTHON=...)" >&2; exit 2; }
  log "installing $* into ${venv#"$ROOT"/} (PyPI)"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "$@"
  touch "$stamp"
}

ensure_venv "$VENV" "$STAMP" "aws-sam-cli==$SAM_CLI_VERSION" "cfn-lint==$CFN_LINT_VERSION"
ensure_venv "$CHECKOV_VENV" "$CHECKOV_STAMP" "checkov==$CHECKOV_VERSION"

SAM="$VENV/bin/sam"
CFN_LINT="$VENV/bin/cfn-lint"
CHECKOV="$CHECKOV_VENV/bin/checkov"
failed=0

# sam reads samconfig.toml next to the template; a `lint = true` there would turn the plain
# `sam validate` into a second lint run and skip the SAM translator's checks. Give it an empty
# configuration so every run checks the same things.
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
NO_CONFIG="$SCRATCH/samconfig.toml"
: >"$NO_CONFIG"

# Runs a linter, shows its output, and fails it on a non-zero exit or on any line that reads
# like a warning or an error (sam prints some of those with exit code 0).
run() {
  local name="$1"; shift
  local out rc=0
  log "$name"
  out="$("$@" 2>&1)" || rc=$?
  [[ -n "$out" ]] && printf '%s\n' "$out"
  if (( rc != 0 )); then
    echo "FAIL: $name exited with $rc"
    failed=1
  elif grep -Eiq '(^|[^a-z])(warn|warning|error)([^a-z]|$)|\[\[[EW][0-9]+|^[EW][0-9]{4} ' <<<"$out"; then
    echo "FAIL: $name reported warnings"
    failed=1
  fi
}

# checkov prints failed checks only (--quiet --compact: check id, resource, lines). Checks that do
# not fit this design are skipped in the resource's Metadata (checkov: skip:), each with its reason;
# README "Security scan" lists them. It fails on a non-zero exit (a failed check), on a logged
# warning or error, and when its JSON report shows a parsing error or no passed check at all (a
# template checkov could not read would otherwise pass with nothing checked).
run_checkov() {
  local name="checkov --framework cloudformation" out rc=0 report="$SCRATCH/checkov.json" summary
  log "$name"
  out="$("$CHECKOV" -f "$TEMPLATE" --framework cloudformation --quiet --compact --skip-download \
    --output cli --output json --output-file-path "console,$report" 2>&1)" || rc=$?
  [[ -n "$out" ]] && printf '%s\n' "$out"
  if ! summary="$("$CHECKOV_VENV/bin/python" - "$report" <<'PY'
import json, sys
try:
    with open(sys.argv[1]) as f:
        report = json.load(f)
except (OSError, ValueError) as e:
    sys.exit(f"no JSON report ({e})")
# One framework gives one object; a list would mean several check types ran.
s = (report if isinstance(report, dict) else report[0]).get("summary", {})
print(f"checkov {s.get('checkov_version', '?')}: {s.get('passed', 0)} passed, {s.get('failed', 0)} failed, "
      f"{s.get('skipped', 0)} skipped (reasons in the template's Metadata), "
      f"{s.get('parsing_errors', 0)} parsing errors, {s.get('resource_count', 0)} resources")
ok = s.get("failed", 1) == 0 and s.get("parsing_errors", 1) == 0 and s.get("passed", 0) > 0
sys.exit(0 if ok else 1)
PY
)"; then
    [[ -n "$summary" ]] && echo "$summary"
    echo "FAIL: $name found failed checks, parsing errors or nothing to check"
    failed=1
  else
    echo "$summary"
  fi
  if (( rc != 0 )); then
    echo "FAIL: $name exited with $rc"
    failed=1
  elif grep -Eq '\[(WARNI|ERROR)\]|Traceback' <<<"$out"; then
    echo "FAIL: $name logged warnings or errors"
    failed=1
  fi
}

run "sam validate --lint" "$SAM" validate --lint -t "$TEMPLATE" --config-file "$NO_CONFIG"
run "sam validate --region us-east-1" "$SAM" validate -t "$TEMPLATE" --region us-east-1 --config-file "$NO_CONFIG"
run "cfn-lint" "$CFN_LINT" -- "$TEMPLATE"
run_checkov

if (( failed )); then
  echo "lint-template: $TEMPLATE has lint findings (see above)" >&2
  exit 1
fi
log "template lint clean: $TEMPLATE"
