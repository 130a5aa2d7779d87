#!/usr/bin/env bash
# Upload benchmark: one 1 GiB evidence upload through the release server, its throughput
# next to `sha256sum` of the same file in the same run (the server hashes every byte
# too), and the server's peak RSS (VmHWM).
#
#   cargo build --release && bench/upload.sh [size in MiB, default 1024]
#
# Starts `casefile serve` on a throwaway data dir (embedded PostgreSQL, local evidence
# folder; set CASEFILE_OBJECT_STORE_URL and AWS_* to measure S3), prints one table.
set -euo pipefail
cd "$(dirname "$0")/.."
MIB="${1:-1024}"
BIN=target/release/casefile
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
WORK="$(mktemp -d)"
chmod 755 "$WORK"
PORT=$((20000 + RANDOM % 20000))
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

CASEFILE_DATA_DIR="$WORK/data" CASEFILE_LISTEN="127.0.0.1:$PORT" CASEFILE_RATE_LIMIT_PER_MINUTE=0 \
  CASEFILE_MAX_UPLOAD_BYTES=$((2 * 1024 * 1024 * 1024)) "$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && [ -s "$WORK/data/admin-token" ] && break
  sleep 0.5
done
TOKEN="$(cat "$WORK/data/admin-token")"
API="http://127.0.0.1:$PORT"

head -c "$((MIB * 1024 * 1024))" /dev/urandom >"$WORK/file.bin"
start=$(date +%s.%N)
SHA="$(sha256sum "$WORK/file.bin" | cut -d' ' -f1)"
sha_secs=$(echo "$(date +%s.%N) - $start" | bc)

QUERY='mutation($input: IngestDetectionsInput!) { ingestDetections(input: $input) { detections { id } } }'
VARS="{\"input\":{\"detections\":[{\"externalId\":\"bench-1\",\"source\":\"FILE_ACTIVITY\",\"ruleName\":\"Bench\",\"observedAt\":\"2026-11-30T00:00:00Z\",\"riskScore\":1,\"file\":{\"name\":\"bench.bin\",\"sha256\":\"$SHA\"}}]}}"
ID="$(curl -fsS "$API/graphql" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d "{\"query\":\"$QUERY\",\"variables\":$VARS}" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')"
[ -n "$ID" ] || { echo "ingest failed" >&2; exit 1; }

start=$(date +%s.%N)
STATUS="$(curl -sS -o "$WORK/upload.json" -w '%{http_code}' -T "$WORK/file.bin" \
  -H "authorization: Bearer $TOKEN" "$API/detections/$ID/file")"
up_secs=$(echo "$(date +%s.%N) - $start" | bc)
[ "$STATUS" = 201 ] || { echo "upload answered $STATUS: $(cat "$WORK/upload.json")" >&2; exit 1; }
grep -q "$SHA" "$WORK/upload.json" || { echo "the server's sha256 differs" >&2; exit 1; }

start=$(date +%s.%N)
curl -fsS -o /dev/null -H "authorization: Bearer $TOKEN" "$API/detections/$ID/file"
down_secs=$(echo "$(date +%s.%N) - $start" | bc)

RSS_KB="$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SERVER_PID/status")"
mbps() { echo "scale=1; $MIB * 1.048576 / $1" | bc; }
printf '%-28s %10s %10s\n' "upload benchmark ($MIB MiB)" "seconds" "MB/s"
printf '%-28s %10.2f %10s\n' "sha256sum" "$sha_secs" "$(mbps "$sha_secs")"
printf '%-28s %10.2f %10s\n' "PUT /detections/{id}/file" "$up_secs" "$(mbps "$up_secs")"
printf '%-28s %10.2f %10s\n' "GET /detections/{id}/file" "$down_secs" "$(mbps "$down_secs")"
printf '%-28s %10s MB\n' "server peak RSS (VmHWM)" "$((RSS_KB / 1024))"
