#!/usr/bin/env python3
"""A service provider on PyPI's authlib reading /userinfo and /premiuminfo from the running
mobileconnect sandbox (issue 6: identity products, KYC match, signed-in data release).

authlib's requests ``OAuth2Session`` builds the authorization request (code flow with PKCE
S256, ``state``, ``nonce``, the Mobile Connect ``version``/``acr_values``/``login_hint`` and
a ``claims`` parameter carrying KYC values for premiuminfo), the script follows the
gateway's headless redirects while the sandbox phone (JSON API) approves, then authlib
exchanges the code (``client_secret_basic``, state checked) and reads the protected
resources with its bearer token. The id_token is verified with joserfc against the JWKS and
its ``sub`` must be the one userinfo returns.

Checks: the OIDC shape at /userinfo (``+`` E.164 phone number, nested ``address``), the
flat Mobile Connect names at /premiuminfo, ``name_match``/``address_match`` = "true" for the
seeded subscriber's real values and ``birthdate_match`` = "false" for a wrong one, and no
provisioning fact (``sim_changed_at``, ``lost_stolen``) anywhere.

Usage: python3 userinfo_authlib.py SANDBOX_JSON [BASE_URL]
Exit 0 with one summary line on success; non-zero with the reason on any failure.
"""

import json
import secrets
import sys
import threading
import warnings
from urllib.parse import parse_qs, urljoin, urlparse

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.integrations.requests_client import OAuth2Session
    from authlib.common.security import generate_token

MSISDN = "447700900301"  # seeded: David Andrew Smith, 123 Fake Street, Manchester M1 1AB, GB
TIMEOUT = 30


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def read_args():
    check(len(sys.argv) > 1, "usage: userinfo_authlib.py SANDBOX_JSON [BASE_URL]")
    with open(sys.argv[1], encoding="utf-8") as f:
        info = json.load(f)
    issuer = info["operators"][0]["issuer"]
    base = (sys.argv[2] if len(sys.argv) > 2 else issuer).rstrip("/")
    sp = next(s for s in info["service_providers"] if s["client_id"] == "onlineshopper")
    return base, sp


def phone_approves(base, msisdn, done):
    """Approves the next challenge on the sandbox phone (JSON device API)."""
    try:
        for _ in range(3):
            r = requests.get(f"{base}/phone/{msisdn}/challenges", params={"wait": "10"}, timeout=TIMEOUT)
            check(r.ok, f"phone poll: HTTP {r.status_code}")
            challenges = r.json().get("challenges") or []
            if not challenges:
                continue
            c = challenges[0]
            a = requests.post(
                f"{base}/phone/{msisdn}/challenges/{c['id']}", json={"decision": "approve"}, timeout=TIMEOUT
            )
            check(a.ok and a.json().get("result") == "approved", f"phone answer: HTTP {a.status_code} {a.text[:200]}")
            done["ok"] = True
            return
        done["error"] = f"no challenge reached phone {msisdn}"
    except Exception as e:  # noqa: BLE001 (reported by the main thread)
        done["error"] = repr(e)


def follow_to_callback(base, url, redirect_uri):
    """Headless mode (digest §4.7): follow the gateway's own redirects until one targets the
    SP's redirect URI; return that URL (not requested: it is the SP's)."""
    http = requests.Session()
    for _ in range(60):
        r = http.get(url, allow_redirects=False, timeout=TIMEOUT)
        check(r.is_redirect, f"expected a redirect from {url}, got HTTP {r.status_code}")
        url = urljoin(url, r.headers["location"])
        if url.startswith(redirect_uri):
            return url
    raise Failed("no redirect to the SP within 60 hops")


def main():
    base, sp = read_args()
    metadata = requests.get(f"{base}/.well-known/openid-configuration", timeout=TIMEOUT).json()
    for key in ("userinfo_endpoint", "premiuminfo_endpoint", "token_endpoint", "jwks_uri"):
        check(key in metadata, f"metadata lacks {key}")
    redirect_uri = sp["redirect_uris"][0]
    scope = "openid mc_identity_signup email mc_kyc_plain"
    for s in scope.split():
        check(s in sp["scopes"], f"the demo SP is not registered for {s}")

    claims = {
        "premiuminfo": {
            "name": {"value": "David Andrew Smith"},
            "address": {"value": "123 Fake Street, Manchester M1 1AB, GB"},
            "birthdate": {"value": "1999-01-01"},
        }
    }
    session = OAuth2Session(
        sp["client_id"],
        sp["client_secret"],
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    code_verifier = generate_token(48)
    nonce = secrets.token_urlsafe(16)
    url, state = session.create_authorization_url(
        metadata["authorization_endpoint"],
        code_verifier=code_verifier,
        nonce=nonce,
        version="mc_di_r2_v2.3",
        acr_values="2",
        login_hint=f"MSISDN:{MSISDN}",
        claims=json.dumps(claims),
    )

    done = {}
    phone = threading.Thread(target=phone_approves, args=(base, MSISDN, done))
    phone.start()
    callback = follow_to_callback(base, url, redirect_uri)
    phone.join(TIMEOUT)
    check(done.get("ok"), f"phone: {done.get('error')}")
    q = parse_qs(urlparse(callback).query)
    check("code" in q, f"no code in {callback}")

    token = session.fetch_token(
        metadata["token_endpoint"], authorization_response=callback, state=state, code_verifier=code_verifier
    )
    check(token.get("access_token"), f"no access token: {token}")

    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=TIMEOUT).json())
    id_token = jwt.decode(token["id_token"], keys)
    check(id_token.claims.get("nonce") == nonce, "id_token nonce")
    sub = id_token.claims["sub"]

    ui = session.get(metadata["userinfo_endpoint"], timeout=TIMEOUT)
    check(ui.ok, f"userinfo: HTTP {ui.status_code} {ui.text[:200]}")
    u = ui.json()
    check(u.get("sub") == sub, f"userinfo sub {u.get('sub')!r} != id_token sub {sub!r}")
    check(u.get("given_name") == "David", f"userinfo given_name: {u}")
    check(u.get("email") == "david.smith@example.com", f"userinfo email: {u}")
    check(u.get("phone_number") == f"+{MSISDN}", f"userinfo phone_number: {u}")
    check(isinstance(u.get("address"), dict) and u["address"].get("locality") == "Manchester", f"userinfo address: {u}")

    pi = session.get(metadata["premiuminfo_endpoint"], timeout=TIMEOUT)
    check(pi.ok, f"premiuminfo: HTTP {pi.status_code} {pi.text[:200]}")
    p = pi.json()
    check(p.get("sub") == sub, "premiuminfo sub")
    check(p.get("phone_number") == MSISDN, f"premiuminfo phone_number: {p}")
    check(p.get("city") == "Manchester" and p.get("postal_code") == "M1 1AB", f"premiuminfo address parts: {p}")
    check(p.get("name_match") == "true", f"KYC name_match: {p}")
    check(p.get("address_match") == "true", f"KYC address_match: {p}")
    check(p.get("birthdate_match") == "false", f"KYC birthdate_match: {p}")
    for leaked in ("sim_changed_at", "lost_stolen", "account_state"):
        check(leaked not in u and leaked not in p, f"{leaked} released")

    print(
        f"authlib userinfo: {len(u)} claims at /userinfo, {len(p)} at /premiuminfo, "
        f"KYC name/address match, sub {sub[:8]}…"
    )


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
