#!/usr/bin/env bash
# Builds the release binary, runs every bench scenario (signing floor, device-initiated
# login, CIBA poll) against the real gateway over loopback, and prints a summary with each
# throughput as a fraction of the RSA-2048 signing floor measured in the same run.
#
#   bench/run.sh                              # 64 workers, 10 s per scenario
#   bench/run.sh --concurrency 16             # any `mobileconnect bench` option passes through
#   BENCH_OUT=results.jsonl bench/run.sh      # keep the JSON lines
#
# The figures are only as quiet as the machine: the load average is printed before and
# after. See bench/README.md and docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release -p mobileconnect
bin=target/release/mobileconnect

out="${BENCH_OUT:-}"
if [[ -z "$out" ]]; then
  out="$(mktemp "${TMPDIR:-/tmp}/mc-bench.XXXXXX")"
  trap 'rm -f "$out"' EXIT
fi

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "machine: $(nproc) cores, ${cpu:-unknown CPU}; commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# The table goes to stderr as the scenarios finish; the JSON lines to "$out".
"$bin" bench --scenario all --json "$@" >"$out"

echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
echo
if command -v jq >/dev/null 2>&1; then
  jq -r -s '
    (map(select(.scenario == "floor")) | first) as $f
    | "summary (\($f.build) build, \($f.cores) cores)",
      "  RSA-2048 signing floor: \($f.rsa2048_sign_per_sec_one_core)/s on one core, \($f.rsa2048_sign_per_sec_all_cores)/s on all cores",
      "  ES256 for comparison:   \($f.es256_sign_per_sec_one_core)/s on one core, \($f.es256_sign_per_sec_all_cores)/s on all cores",
      (.[] | select(.scenario != "floor")
        | "  \(.scenario): \(.logins_per_sec) logins/s = \((.floor_fraction * 1000 | round) / 10) % of the floor (one signature per login); p50 \(.p50_ms) ms, p99 \(.p99_ms) ms; peak RSS \((.peak_rss_kib / 1024 * 10 | round) / 10) MiB; \(.logins) logins, \(.errors) errors at concurrency \(.concurrency)")
  ' "$out"
else
  echo "(jq not found: the JSON lines follow)"
  cat "$out"
fi

# The reference OP (npm oidc-provider) is not measured yet: see the TODO in bench/README.md.
if command -v node >/dev/null 2>&1; then
  echo
  echo "note: node $(node --version) is available, but the oidc-provider reference peer (bench/peer/) is not written yet: TODO in bench/README.md"
fi
