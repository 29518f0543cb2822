#!/usr/bin/env bash
# Property-based API testing of the operator APIs with schemathesis, driven by the OpenAPI
# document the gateway serves (`/admin/v1/openapi.json`): the Registry and Provisioning API
# with the admin bearer token, then introspection and revocation with the demo client's
# credentials. Fails on any 5xx and on any answer the document does not describe: every
# check (status codes, content types, response schemas and headers, schema-invalid input
# refused, auth not ignored). `positive_data_acceptance` is left out for /admin/v1 only: the
# registry has rules across fields (sector_identifier_uri when redirect_uris span hosts,
# known scopes, the metadata members, the attribute vocabulary) that a JSON Schema cannot
# state, so some schema-valid specs are rightly refused with 400. Bounded: a fixed number of
# examples per operation, no stateful phase, no example database left behind.
#
#   scripts/schemathesis.sh SCHEMATHESIS_BIN SANDBOX_JSON BASE_URL
#
# It changes the sandbox's data (creates clients, suspends subscribers, rotates secrets):
# run it against a throwaway sandbox, after the suites that need the demo data.
# MC_SCHEMATHESIS_EXAMPLES (default 30) sets the examples per operation, MC_SCHEMATHESIS_SEED
# the seed (default: random, printed so a failure can be replayed).
set -euo pipefail

ST="$1"
SANDBOX_JSON="$2"
BASE="$3"
EXAMPLES="${MC_SCHEMATHESIS_EXAMPLES:-30}"
SEED="${MC_SCHEMATHESIS_SEED:-$((RANDOM * 32768 + RANDOM))}"
SPEC="$BASE/admin/v1/openapi.json"

# schemathesis keeps a crash cache (`.schemathesis/`) in its working folder: a throwaway one,
# so nothing is left in the tree (each failure is printed with a curl line to reproduce it).
RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/mc-schemathesis.XXXXXX")"
trap 'rm -rf "$RUN_DIR"' EXIT

read_json() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' \
    "$SANDBOX_JSON" "$1"
}
ADMIN_TOKEN="$(read_json 'd["admin_token"]')"
CLIENT_ID="$(read_json 'd["service_providers"][0]["client_id"]')"
CLIENT_SECRET="$(read_json 'd["service_providers"][0]["client_secret"]')"

common=(
  --checks all
  --generation-database none
  --phases examples,coverage,fuzzing
  --max-examples "$EXAMPLES"
  --seed "$SEED"
  --workers 2
  --request-timeout 10
  --suppress-health-check all
  --warnings off
)

cd "$RUN_DIR"
echo "schemathesis: $("$ST" --version), seed $SEED, $EXAMPLES examples per operation"
echo "schemathesis: Registry and Provisioning (/admin/v1, admin token)"
"$ST" run "$SPEC" "${common[@]}" \
  --include-path-regex '^/admin/v1/' \
  --exclude-checks positive_data_acceptance \
  -H "Authorization: Bearer $ADMIN_TOKEN"

echo "schemathesis: Token Manager (/introspect, /revoke, client credentials)"
"$ST" run "$SPEC" "${common[@]}" \
  --include-path-regex '^/(introspect|revoke)$' \
  --auth "$CLIENT_ID:$CLIENT_SECRET"
