#!/usr/bin/env bash
# Every benchmark figure the issues ask for, on release builds (figures, not
# tests). About 5 minutes on 2 cores after the build; one of them waits for a
# simulated Okta rate-limit window. See benches/README.md for what each
# figure means and the last measured values.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARGO="${CARGO:-cargo}"

echo "==> cargo build --release --bins"
"$CARGO" build --release --bins
echo "==> ingest: per-request work in-process (criterion)"
"$CARGO" bench -p ingest --bench handler
echo "==> dispatcher: signing a DPoP proof and a client assertion (criterion)"
"$CARGO" bench -p dispatcher --bench okta_signing
echo "==> function processes: cold start, first event, peak memory, binary size"
"$CARGO" bench -p integration-tests --bench function_process
echo "==> dispatcher: concurrency bound, 100 requests/minute Okta bucket"
"$CARGO" bench -p integration-tests --bench dispatcher_load
echo "==> the whole pipeline: webhook 200 to Slack summary, burst of 200 deliveries"
bash scripts/bench-pipeline.sh
