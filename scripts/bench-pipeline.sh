#!/usr/bin/env bash
# Benchmarks the whole local pipeline (issue 5's figures, not tests), on a release build:
#
#   1. latency from the webhook's 200 to the Slack summary for a 5-user event
#      (median and p99 over 50 events sent one at a time);
#   2. the ingest function's answer latency (median, p99) under a burst of 200
#      webhook deliveries with 16 in flight, and how long until every summary is posted.
#
# Same path as `make local` and the end-to-end tests: HTTP to the function URL, the compiled
# binaries under the Runtime API emulator, moto, the SQS event source emulation, and the local
# Okta and Slack stand-ins (rate limits lifted: this measures the pipeline, not Okta's limits).
#
# Usage: scripts/bench-pipeline.sh [--runs N] [--burst N] [--in-flight N]
# moto comes from .venv (`make deps`), MOTO_PYTHON, or python3 on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO="${CARGO:-cargo}"

echo "==> cargo build --release --bins"
"$CARGO" build --release --bins
echo "==> cargo bench -p integration-tests --bench pipeline -- $*"
exec "$CARGO" bench -p integration-tests --bench pipeline -- "$@"
