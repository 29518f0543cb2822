#!/usr/bin/env bash
# The suites that need more than cargo, against a freshly started sandbox: npm openid-client
# v6 (code + PKCE, and CIBA poll), a headless Chromium (playwright-core), and PyPI
# authlib/joserfc (Mobile Connect SI, userinfo) and schemathesis (the OpenAPI-described
# operator APIs and Discovery's admin API: no 5xx, answers as documented), in a throwaway
# venv.
#
#   scripts/ci-extra.sh            # debug binary (cargo build); MOBILECONNECT_BIN=PATH to use another
#   scripts/ci-extra.sh --release  # release binary
#
# Outside CI a missing tool (node/npm, Node >= 20, /usr/bin/chromium, the npm packages,
# python3 with venv, the PyPI packages) skips the suites that need it with a "skipped: …"
# line. With CI=true any missing tool fails the run (exit 1). A failing suite always fails
# the run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_DIR="$ROOT/tests/interop/node"
PY_DIR="$ROOT/tests/interop/python"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
IN_CI=false
case "${CI:-}" in true | 1 | yes) IN_CI=true ;; esac
PROFILE=debug
[[ "${1:-}" == "--release" ]] && PROFILE=release

passed=0
failed=0
skipped=0
say() { printf 'ci-extra: %s\n' "$*"; }

# A missing tool: a failure in CI, a skip elsewhere. $1 = how many suites it skips.
missing() {
  local n="$1"
  shift
  if $IN_CI; then
    say "FAILED: $* (CI=true: every tool must be there)"
    exit 1
  fi
  say "skipped: $*"
  skipped=$((skipped + n))
}

summary() {
  say "$passed passed, $failed failed, $skipped skipped"
}

# ---- tools ---------------------------------------------------------------------------------
# Node also drives the sandbox harness below (free port, readiness), so without it every
# suite is skipped (9: openid-client code, openid-client CIBA, openid-client token manager, browser,
# story, passkeys, authlib SI, authlib userinfo, schemathesis).
have_node=true
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing 9 "node/npm not found: the openid-client, browser and sandbox harness need Node 20"
  have_node=false
elif ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  missing 9 "Node $(node --version) is older than 20: the openid-client, browser and sandbox harness need Node 20"
  have_node=false
fi
if ! $have_node; then
  summary
  exit 0
fi

if [[ ! -d "$NODE_DIR/node_modules/openid-client" || ! -d "$NODE_DIR/node_modules/playwright-core" ]]; then
  say "installing the npm packages (npm ci) in tests/interop/node"
  if ! (cd "$NODE_DIR" && npm ci --ignore-scripts --no-audit --no-fund); then
    missing 9 "npm ci failed in tests/interop/node: the Node suites and the sandbox harness need openid-client and playwright-core"
    summary
    exit 0
  fi
fi

have_chromium=true
if [[ ! -x "$CHROMIUM" ]]; then
  missing 3 "$CHROMIUM not found: the browser, story and passkey suites need Debian's chromium (apt-get install chromium)"
  have_chromium=false
fi

# Python: a venv under the run's temp folder (created once the folder exists, below).
have_python=true
if ! command -v python3 >/dev/null 2>&1; then
  missing 3 "python3 not found: the authlib suites (SI, userinfo) and schemathesis need Python 3 with venv"
  have_python=false
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing 3 "python3 has no venv/ensurepip: the authlib suites (SI, userinfo) and schemathesis need it (apt-get install python3-venv)"
  have_python=false
fi

# ---- the binary ----------------------------------------------------------------------------
if [[ -n "${MOBILECONNECT_BIN:-}" ]]; then
  BIN="$MOBILECONNECT_BIN"
else
  cargo_flags=(-p mobileconnect --bin mobileconnect)
  [[ $PROFILE == release ]] && cargo_flags+=(--release)
  (cd "$ROOT" && cargo build "${cargo_flags[@]}")
  target_dir="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
  BIN="$target_dir/$PROFILE/mobileconnect"
fi
[[ -x "$BIN" ]] || {
  say "FAILED: no binary at $BIN"
  exit 1
}

# ---- a fresh sandbox -----------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mc-ci-extra.XXXXXX")"
SANDBOX_PID=""
cleanup() {
  if [[ -n "$SANDBOX_PID" ]] && kill -0 "$SANDBOX_PID" 2>/dev/null; then
    kill "$SANDBOX_PID" 2>/dev/null || true
    wait "$SANDBOX_PID" 2>/dev/null || true
  fi
  if [[ -n "${PK_PID:-}" ]] && kill -0 "$PK_PID" 2>/dev/null; then
    kill "$PK_PID" 2>/dev/null || true
    wait "$PK_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

healthy() {
  node -e 'fetch(process.argv[1],{signal:AbortSignal.timeout(2000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$1"
}

BASE=""
for attempt in 1 2 3 4 5; do
  PORT="$(free_port)"
  DATA="$WORK/data"
  LOG="$WORK/sandbox-$attempt.log"
  rm -rf "$DATA"
  RUST_LOG="${RUST_LOG:-warn}" "$BIN" sandbox --listen "127.0.0.1:$PORT" --data "$DATA" >"$LOG" 2>&1 &
  SANDBOX_PID=$!
  deadline=$((SECONDS + 120))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$SANDBOX_PID" 2>/dev/null; then
      wait "$SANDBOX_PID" 2>/dev/null || true
      SANDBOX_PID=""
      break
    fi
    if healthy "http://127.0.0.1:$PORT/healthz"; then
      BASE="http://127.0.0.1:$PORT"
      break
    fi
    sleep 0.2 # polling interval of the readiness loop
  done
  [[ -n "$BASE" ]] && break
  if [[ -z "$SANDBOX_PID" ]]; then
    if grep -qi "in use" "$LOG"; then
      say "port $PORT was taken meanwhile; another one"
      continue
    fi
    say "FAILED: the sandbox exited before it was ready; its output:"
  else
    say "FAILED: the sandbox did not answer /healthz within 120 s; its output:"
  fi
  cat "$LOG" >&2
  exit 1
done
[[ -n "$BASE" ]] || {
  say "FAILED: no free port in 5 attempts"
  exit 1
}
[[ -f "$DATA/sandbox.json" ]] || {
  say "FAILED: the sandbox wrote no $DATA/sandbox.json"
  exit 1
}
say "sandbox $BASE ($BIN), data $DATA"

# ---- the suites ----------------------------------------------------------------------------
run_suite() {
  local name="$1"
  shift
  say "running $name"
  if (cd "$NODE_DIR" && MOBILECONNECT_ARTIFACTS="$WORK/artifacts" "$@"); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    say "FAILED: $name; the sandbox's log:"
    tail -n 50 "$LOG" >&2 || true
  fi
}

run_suite "openid-client (code + PKCE)" node oidc-client.mjs "$DATA/sandbox.json" "$BASE"
run_suite "openid-client (CIBA poll)" node ciba.mjs "$DATA/sandbox.json" "$BASE"
run_suite "openid-client (introspection, refresh, revocation, quotas)" node introspect.mjs "$DATA/sandbox.json" "$BASE"
if $have_chromium; then
  run_suite "browser (playwright-core + chromium)" env CHROMIUM="$CHROMIUM" node browser.mjs "$DATA/sandbox.json" "$BASE"
fi
if $have_chromium; then
  # The sandbox story (shop → operator selection → phone → logged in → payment); its
  # screenshots are kept (the work folder is not): target/test-output/story.
  run_suite "the sandbox story (shop, Discovery, phone, payment; chromium)" \
    env CHROMIUM="$CHROMIUM" MOBILECONNECT_ARTIFACTS="${MC_TEST_OUTPUT:-$ROOT/target/test-output}" \
    node story.mjs "$DATA/sandbox.json" "$BASE"
fi
if $have_chromium; then
  # Passkeys need the page on `localhost` (WebAuthn refuses IP addresses): a second sandbox
  # with that issuer and the passkey authenticator on, still listening on 127.0.0.1 only.
  PK_BASE=""
  PK_DATA="$WORK/data-passkey"
  PK_LOG="$WORK/sandbox-passkey.log"
  for attempt in 1 2 3; do
    PK_PORT="$(free_port)"
    rm -rf "$PK_DATA"
    MC_GATEWAY__AUTHENTICATORS__ENABLED='["app_push", "passkey"]' RUST_LOG="${RUST_LOG:-warn}" \
      "$BIN" sandbox --listen "127.0.0.1:$PK_PORT" --data "$PK_DATA" --issuer "http://localhost:$PK_PORT" >"$PK_LOG" 2>&1 &
    PK_PID=$!
    deadline=$((SECONDS + 120))
    while ((SECONDS < deadline)) && kill -0 "$PK_PID" 2>/dev/null; do
      if healthy "http://127.0.0.1:$PK_PORT/healthz"; then
        PK_BASE="http://localhost:$PK_PORT"
        break
      fi
      sleep 0.2 # polling interval of the readiness loop
    done
    [[ -n "$PK_BASE" ]] && break
    kill "$PK_PID" 2>/dev/null || true
    wait "$PK_PID" 2>/dev/null || true
    grep -qi "in use" "$PK_LOG" || break
  done
  if [[ -n "$PK_BASE" ]]; then
    LOG="$PK_LOG" run_suite "passkeys (playwright-core + chromium, virtual authenticator)" \
      env CHROMIUM="$CHROMIUM" node passkey.mjs "$PK_DATA/sandbox.json" "$PK_BASE"
    kill "$PK_PID" 2>/dev/null || true
    wait "$PK_PID" 2>/dev/null || true
  else
    say "FAILED: the passkey sandbox did not start; its output:"
    cat "$PK_LOG" >&2 || true
    failed=$((failed + 1))
  fi
fi
if $have_python; then
  PY_VENV="$WORK/pyvenv"
  say "installing the PyPI packages (tests/interop/python/requirements.txt) into $PY_VENV"
  if python3 -m venv "$PY_VENV" &&
    "$PY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
      -r "$PY_DIR/requirements.txt"; then
    run_suite "authlib + joserfc (Mobile Connect SI)" "$PY_VENV/bin/python" "$PY_DIR/si_authlib.py" "$DATA/sandbox.json" "$BASE"
    run_suite "authlib (userinfo, premiuminfo, KYC match)" "$PY_VENV/bin/python" "$PY_DIR/userinfo_authlib.py" "$DATA/sandbox.json" "$BASE"
    # Last of all: it creates clients, suspends subscribers and rotates secrets.
    run_suite "schemathesis (OpenAPI operator APIs and Discovery's admin API: no 5xx, answers as documented)" \
      bash "$ROOT/scripts/schemathesis.sh" "$PY_VENV/bin/st" "$DATA/sandbox.json" "$BASE"
  else
    missing 3 "the Python venv or pip install failed: the authlib suites (SI, userinfo) and schemathesis need authlib, joserfc, requests and schemathesis from PyPI"
  fi
fi

summary
((failed == 0))
