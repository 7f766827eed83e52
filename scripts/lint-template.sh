#!/usr/bin/env bash
# Lints template.yaml the way CI does: `sam validate --lint`, plain `sam validate` (it catches
# other mistakes, and needs a region), and `cfn-lint`. Any warning or error fails the script.
#
# aws-sam-cli pins its own boto3, aws-sam-translator and cfn-lint versions, so both tools live in
# their own virtual environment, .venv-sam/ at the repository root, installed from PyPI on first
# use (the only network access this script needs). Override the versions with SAM_CLI_VERSION /
# CFN_LINT_VERSION, the interpreter with PYTHON.
#
# Usage: scripts/lint-template.sh [template]      (default: template.yaml)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TEMPLATE="${1:-template.yaml}"
SAM_CLI_VERSION="${SAM_CLI_VERSION:-1.170.0}"
CFN_LINT_VERSION="${CFN_LINT_VERSION:-1.58.0}"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv-sam"
STAMP="$VENV/.installed-aws-sam-cli-$SAM_CLI_VERSION-cfn-lint-$CFN_LINT_VERSION"

# No usage telemetry. (SAM CLI's weekly "update available" check may print a notice; it is
# not a lint finding and does not fail the script.)
export SAM_CLI_TELEMETRY=0
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '==> %s\n' "$*"; }

[[ -f "$TEMPLATE" ]] || { echo "lint-template: $TEMPLATE not found" >&2; exit 2; }

if [[ ! -f "$STAMP" ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
  command -v "$PYTHON" >/dev/null || { echo "lint-template: $PYTHON not found (set PYTHON=...)" >&2; exit 2; }
  log "installing aws-sam-cli $SAM_CLI_VERSION and cfn-lint $CFN_LINT_VERSION into .venv-sam (PyPI)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet \
    "aws-sam-cli==$SAM_CLI_VERSION" "cfn-lint==$CFN_LINT_VERSION"
  touch "$STAMP"
fi

SAM="$VENV/bin/sam"
CFN_LINT="$VENV/bin/cfn-lint"
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

run "sam validate --lint" "$SAM" validate --lint -t "$TEMPLATE" --config-file "$NO_CONFIG"
run "sam validate --region us-east-1" "$SAM" validate -t "$TEMPLATE" --region us-east-1 --config-file "$NO_CONFIG"
run "cfn-lint" "$CFN_LINT" -- "$TEMPLATE"

if (( failed )); then
  echo "lint-template: $TEMPLATE has lint findings (see above)" >&2
  exit 1
fi
log "template lint clean: $TEMPLATE"
