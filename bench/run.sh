#!/usr/bin/env bash
# Builds the release binary, starts the reference OP (npm oidc-provider, bench/peer/) on
# loopback, and runs every bench scenario against the real gateway over loopback: the
# signing floor, idle RSS, the device-initiated login, CIBA and client_credentials (each
# also against oidc-provider, printed as a ratio), userinfo, then 100,000 pending CIBA
# requests, then discovery lookups with 10 million ported numbers (in process). Prints a summary.
#
#   bench/run.sh                              # 64 clients, 10 s per scenario
#   bench/run.sh --concurrency 16             # any `mobileconnect bench` option passes through
#   BENCH_OUT=results.jsonl bench/run.sh      # keep the JSON lines
#   BENCH_PENDING=0 bench/run.sh              # skip the pending scenario (about 2 minutes)
#   BENCH_PEER=0 bench/run.sh                 # without the reference OP
#   BENCH_DISCOVERY=0 bench/run.sh            # skip the discovery bench (10M ported numbers, about 2 minutes)
#   CARGO_TARGET_DIR=/tmp/t bench/run.sh      # build elsewhere (the binary is looked up there)
#
# Needs cargo; node >= 20 and npm for the peer (skipped with a note when missing); jq for the
# summary. The figures are only as quiet as the machine: the load average is printed before
# and after. See bench/README.md and docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release -p mobileconnect
bin="${CARGO_TARGET_DIR:-target}/release/mobileconnect"

out="${BENCH_OUT:-}"
if [[ -z "$out" ]]; then
  out="$(mktemp "${TMPDIR:-/tmp}/mc-bench.XXXXXX")"
  cleanup_out=1
else
  : >"$out"
  cleanup_out=0
fi

peer_pid=""
peer_log="$(mktemp "${TMPDIR:-/tmp}/mc-bench-peer.XXXXXX")"
cleanup() {
  if [[ -n "$peer_pid" ]]; then kill "$peer_pid" 2>/dev/null || true; fi
  rm -f "$peer_log"
  if [[ "$cleanup_out" == 1 ]]; then rm -f "$out"; fi
}
trap cleanup EXIT

peer_args=()
if [[ "${BENCH_PEER:-1}" != 0 ]] && command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  # The pinned oidc-provider (package-lock.json), installed once; no install scripts run.
  if [[ ! -d bench/peer/node_modules/oidc-provider ]]; then
    (cd bench/peer && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
  NODE_ENV=production node bench/peer/peer.mjs 0 >"$peer_log" 2>&1 &
  peer_pid=$!
  for _ in $(seq 100); do
    grep -q '^peer listening on ' "$peer_log" && break
    kill -0 "$peer_pid" 2>/dev/null || break
    sleep 0.1
  done
  peer_url="$(sed -n 's/^peer listening on \(http[^ ]*\) .*/\1/p' "$peer_log" | head -n1)"
  if [[ -z "$peer_url" ]]; then
    echo "the reference OP did not start:" >&2
    cat "$peer_log" >&2
    exit 1
  fi
  peer_args=(--peer "$peer_url" --peer-pid "$peer_pid")
  echo "reference OP: oidc-provider $(node -p "require('./bench/peer/node_modules/oidc-provider/package.json').version") on node $(node --version), $peer_url (pid $peer_pid)"
else
  echo "reference OP: not run (BENCH_PEER=0, or node/npm not found)"
fi

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "machine: $(nproc) cores, ${cpu:-unknown CPU}; commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# The table goes to stderr as the scenarios finish; the JSON lines to "$out".
"$bin" bench --scenario all --json "${peer_args[@]}" "$@" >>"$out"
pending="${BENCH_PENDING:-100000}"
if [[ "$pending" != 0 ]]; then
  "$bin" bench --scenario pending --pending "$pending" --json "$@" >>"$out"
fi
if [[ "${BENCH_DISCOVERY:-1}" != 0 ]]; then
  # Its own options (`mobileconnect bench discovery --help`); the HTTP options do not apply.
  "$bin" bench discovery --entries "${BENCH_DISCOVERY_ENTRIES:-10000000}" --json >>"$out"
fi

echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
echo
if command -v jq >/dev/null 2>&1; then
  jq -r -s '
    def mib: if . == null then "?" else "\((. / 1024 * 10 | round) / 10) MiB" end;
    (map(select(.scenario == "floor")) | first) as $f
    | "summary (\($f.build) build, \($f.cores) cores)",
      "  RSA-2048 signing floor: \($f.rsa2048_sign_per_sec_one_core)/s on one core, \($f.rsa2048_sign_per_sec_all_cores)/s on all cores",
      "  ES256 for comparison:   \($f.es256_sign_per_sec_one_core)/s on one core, \($f.es256_sign_per_sec_all_cores)/s on all cores",
      (.[] | select(.scenario == "idle")
        | "  idle: `mobileconnect sandbox` RSS \(.rss_kib | mib) after \(.settle_secs) s idle"),
      (.[] | select(.ops_per_sec != null)
        | "  \(.scenario) (\(.target)): \(.ops_per_sec)/s"
          + (if .floor_fraction != null then " = \((.floor_fraction * 1000 | round) / 10) % of the floor" else "" end)
          + (if .peer_ratio != null then " = \((.peer_ratio * 100 | round) / 100)x oidc-provider" else "" end)
          + "; p50 \(.p50_ms) ms, p99 \(.p99_ms) ms; peak RSS \(.peak_rss_kib | mib); \(.ops) done, \(.errors) errors at concurrency \(.concurrency)"
          + (if .cpu_ms_per_op != null then "; \(.cpu_ms_per_op) CPU ms each" else "" end)),
      (.[] | select(.scenario == "pending")
        | "  pending: \(.started) CIBA requests pending (store says \(.pending_in_store)); RSS \(.rss_after_kib | mib) after (\(.rss_before_kib | mib) before), peak \(.peak_rss_kib | mib); \(.errors) errors"),
      (.[] | select(.scenario == "discovery")
        | "  discovery: \(.ported_entries) ported numbers + \(.ranges) ranges; \(.lookups_per_sec) lookups/s on \(.threads) threads (p50 \(.lookup_p50_ns) ns, p99 \(.lookup_p99_ns) ns), \(.answers_with_subscriber_id_per_sec)/s with the encrypted subscriber_id; import \(.import_secs) s, load \(.load_secs) s, peak RSS \(.peak_rss_kib | mib); \(.wrong_answers) wrong answers")
  ' "$out"
else
  echo "(jq not found: the JSON lines follow)"
  cat "$out"
fi
