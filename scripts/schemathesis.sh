#!/usr/bin/env bash
# Property-based API testing of the operator APIs with schemathesis, driven by the OpenAPI
# documents the sandbox serves: the gateway's (`/admin/v1/openapi.json`) — the Registry and
# Provisioning API with the admin bearer token, then introspection and revocation with the
# demo client's credentials — and Discovery's (`<discovery base>/admin/v1/openapi.json`,
# the base being `discovery_url` of sandbox.json without `/v2/discovery`), its admin API
# with the same admin token (the sandbox configures both with it). Fails on any 5xx and on
# any answer the documents do not describe: every check (status codes, content types,
# response schemas and headers, schema-invalid input refused, auth not ignored).
# `positive_data_acceptance` is left out where rules a JSON Schema cannot state rightly
# refuse some schema-valid input with 400: for the gateway's /admin/v1 (sector_identifier_uri
# when redirect_uris span hosts, known scopes, the metadata members, the attribute
# vocabulary), and for the Discovery operations named at their run below. Bounded: a fixed
# number of examples per operation, no stateful phase, no example database left behind.
#
#   scripts/schemathesis.sh SCHEMATHESIS_BIN SANDBOX_JSON BASE_URL
#
# It changes the sandbox's data (creates clients, suspends subscribers, rotates secrets,
# replaces Discovery's operators and numbers): run it against a throwaway sandbox, after the
# suites that need the demo data.
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
DISCOVERY_URL="$(read_json 'd["discovery_url"]')"
DISCOVERY_SPEC="${DISCOVERY_URL%/v2/discovery}/admin/v1/openapi.json"
# Discovery's CSV import is `text/csv`, which schemathesis sends through this hook.
SCHEMATHESIS_HOOKS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/schemathesis_hooks.py"
export SCHEMATHESIS_HOOKS

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

# Discovery's admin API, in two runs: the operations a JSON Schema describes whole with
# every check, then those with a rule it cannot state without `positive_data_acceptance`
# (a schema-valid request there may rightly get 400): operator links that must parse as
# URLs and an `encryption_jwk` that must be a usable RSA key (POST and PUT operators),
# redirect URIs that must parse as URLs (POST and PUT apps), a number whose length depends
# on its kind and an operator that must exist (PUT and DELETE numbers/{kind}/{number}),
# the CSV lines of an import, and a CIDR whose host bits must be zero for its prefix and an
# operator that must exist (POST and DELETE ip-ranges).
CROSS_FIELD=(
  'POST /admin/v1/operators'
  'PUT /admin/v1/operators/{id}'
  'POST /admin/v1/apps'
  'PUT /admin/v1/apps/{id}'
  'PUT /admin/v1/numbers/{kind}/{number}'
  'DELETE /admin/v1/numbers/{kind}/{number}'
  'POST /admin/v1/numbers/import'
  'POST /admin/v1/ip-ranges'
  'DELETE /admin/v1/ip-ranges'
)
only_cross=()
but_cross=()
for op in "${CROSS_FIELD[@]}"; do
  only_cross+=(--include-name "$op")
  but_cross+=(--exclude-name "$op")
done
echo "schemathesis: Discovery's admin API ($DISCOVERY_SPEC, admin token)"
"$ST" run "$DISCOVERY_SPEC" "${common[@]}" "${but_cross[@]}" \
  -H "Authorization: Bearer $ADMIN_TOKEN"
echo "schemathesis: Discovery's admin API, the operations with rules across fields"
"$ST" run "$DISCOVERY_SPEC" "${common[@]}" "${only_cross[@]}" \
  --exclude-checks positive_data_acceptance \
  -H "Authorization: Bearer $ADMIN_TOKEN"
