#!/usr/bin/env python3
"""Mobile Connect Server-Initiated login against the running mobileconnect binary, with
PyPI's joserfc (JOSE) and authlib (OIDC id_token rules) as the service provider's stack.

The script generates an RSA key, registers an SI client through the admin REST API with the
public key inline (``jwks``) and a ``notification_uri`` served by a local ``http.server`` on
127.0.0.1, signs a request object (RS256, every required claim of digest §9.2), POSTs it to
``/si-authorize``, approves on the sandbox phone JSON API, receives the notification and
verifies its id_token with the gateway's JWKS (joserfc signature and claims registry, then
authlib's ``CodeIDToken`` for nonce, azp and at_hash).

Usage: python3 si_authlib.py [SANDBOX_JSON] [BASE_URL]
   or  MOBILECONNECT_SANDBOX_JSON=… MOBILECONNECT_BASE_URL=… python3 si_authlib.py
BASE_URL defaults to operators[0].issuer of sandbox.json.
Exit 0 with one summary line on success; non-zero with the reason on any failure.
"""

import json
import os
import secrets
import sys
import threading
import time
import uuid
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

with warnings.catch_warnings():
    # authlib.oidc.core sits on authlib.jose, deprecated in favour of joserfc (used above).
    warnings.simplefilter("ignore")
    from authlib.oidc.core import CodeIDToken

MSISDN = "447700900302"  # a sandbox subscriber; acr_values "2" needs only a tap, no PIN
SI_VERSION = "mc_si_r2_v1.0"
TIMEOUT = 30


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def read_args():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MOBILECONNECT_SANDBOX_JSON")
    if not path:
        raise Failed("usage: si_authlib.py SANDBOX_JSON [BASE_URL] (or MOBILECONNECT_SANDBOX_JSON, MOBILECONNECT_BASE_URL)")
    with open(path, encoding="utf-8") as f:
        info = json.load(f)
    issuer = (info.get("operators") or [{}])[0].get("issuer")
    base = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("MOBILECONNECT_BASE_URL", issuer or "")
    base = base.rstrip("/")
    check(base, f"no base URL: give one or put operators[0].issuer in {path}")
    check(info.get("admin_token"), f"no admin_token in {path}")
    return base, issuer or base, info["admin_token"]


# ---------------------------------------------------------------------------------------
# the SP's notification endpoint


class Receiver:
    """POST /notify on 127.0.0.1:<free port>; records every request, answers 204."""

    def __init__(self):
        self.hits = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.hits.append(
                    {
                        "path": self.path,
                        "authorization": self.headers.get("Authorization"),
                        "content_type": self.headers.get("Content-Type"),
                        "body": body,
                    }
                )
                self.send_response(204)
                self.end_headers()
                receiver.arrived.set()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, seconds):
        check(self.arrived.wait(seconds), f"no notification within {seconds} s")
        return self.hits[0]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------
# steps


def register_client(base, issuer, admin_token, public_jwk, notify_url):
    r = requests.post(
        f"{base}/admin/v1/clients",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={
            "name": "Python SI Ltd",
            "short_name": "PySi",
            "redirect_uris": [f"{issuer}/demo-sp/callback"],
            "scopes": ["openid", "mc_authn"],
            "metadata": {
                "jwks": {"keys": [public_jwk]},
                "notification_uris": [notify_url],
                "request_object_signing_alg": "RS256",
            },
        },
        timeout=TIMEOUT,
    )
    check(r.status_code == 201, f"admin API: HTTP {r.status_code} {r.text[:300]}")
    body = r.json()
    check(body.get("client_id") and body.get("client_secret"), f"admin API answer without credentials: {body}")
    return body


def phone_approves(base, msisdn, client_name, binding_message):
    for _ in range(3):
        r = requests.get(f"{base}/phone/{msisdn}/challenges", params={"wait": "10"}, timeout=TIMEOUT)
        check(r.ok, f"phone poll: HTTP {r.status_code}")
        challenges = r.json().get("challenges") or []
        if not challenges:
            continue
        c = challenges[0]
        check(c.get("client_name") == client_name, f"phone shows client_name {c.get('client_name')!r}")
        check(c.get("binding_message") == binding_message, f"phone shows binding_message {c.get('binding_message')!r}")
        a = requests.post(
            f"{base}/phone/{msisdn}/challenges/{c['id']}",
            json={"decision": "approve"},
            timeout=TIMEOUT,
        )
        check(a.ok and a.json().get("result") == "approved", f"phone answer: HTTP {a.status_code} {a.text[:200]}")
        return c
    raise Failed(f"no challenge reached phone {msisdn} within 30 s")


def verify_id_token(metadata, client_id, id_token, nonce, access_token):
    """Signature with the gateway's JWKS and the claims registry (joserfc); then the OIDC
    rules authlib implements (nonce, azp, at_hash, auth_time)."""
    jwks = requests.get(metadata["jwks_uri"], timeout=TIMEOUT)
    check(jwks.ok, f"JWKS: HTTP {jwks.status_code}")
    key_set = KeySet.import_key_set(jwks.json())
    token = jwt.decode(id_token, key_set, algorithms=["RS256"])
    check(token.header.get("alg") == "RS256", f"id_token alg {token.header.get('alg')}")
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    registry.validate(token.claims)
    oidc = CodeIDToken(
        token.claims,
        token.header,
        options={"iss": {"essential": True, "value": metadata["issuer"]}},
        params={"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    oidc.validate(leeway=5)
    return token.header, token.claims


def main():
    base, issuer, admin_token = read_args()
    metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=TIMEOUT).json()
    check(metadata.get("issuer") == issuer, f"metadata issuer {metadata.get('issuer')} != {issuer}")
    si_endpoint = metadata.get("si_authorization_endpoint")
    check(si_endpoint == f"{base}/si-authorize", f"si_authorization_endpoint {si_endpoint}")
    check("RS256" in (metadata.get("request_object_signing_alg_values_supported") or []), "RS256 not offered for request objects")

    key = RSAKey.generate_key(2048, parameters={"kid": f"py-si-{uuid.uuid4().hex[:8]}", "use": "sig", "alg": "RS256"})
    public_jwk = key.as_dict(private=False)
    check("d" not in public_jwk, "the registered JWK must be public")

    receiver = Receiver()
    try:
        sp = register_client(base, issuer, admin_token, public_jwk, receiver.url)
        client_id = sp["client_id"]
        nonce = str(uuid.uuid4())
        correlation_id = str(uuid.uuid4())
        notification_token = secrets.token_urlsafe(24)
        binding_message = "PY-SI-1"
        now = int(time.time())
        claims = {
            "response_type": "mc_si_async_code",
            "client_id": client_id,
            "iss": client_id,
            "aud": issuer,
            "scope": "openid mc_authn",
            "version": SI_VERSION,
            "nonce": nonce,
            "login_hint": f"MSISDN:{MSISDN}",
            "acr_values": "2",
            "client_notification_token": notification_token,
            "notification_uri": receiver.url,
            "correlation_id": correlation_id,
            "binding_message": binding_message,
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        request_object = jwt.encode({"alg": "RS256", "typ": "JWT", "kid": public_jwk["kid"]}, claims, key)

        r = requests.post(
            si_endpoint,
            data={"client_id": client_id, "response_type": "mc_si_async_code", "scope": "openid mc_authn", "request": request_object},
            timeout=TIMEOUT,
        )
        check(r.status_code == 200, f"/si-authorize: HTTP {r.status_code} {r.text[:300]}")
        started = r.json()
        check(set(started) == {"auth_req_id", "expires_in", "correlation_id"}, f"/si-authorize answer {started}")
        check(started["correlation_id"] == correlation_id, f"correlation_id {started['correlation_id']}")
        auth_req_id = started["auth_req_id"]

        phone_approves(base, MSISDN, "PySi", binding_message)
        hit = receiver.wait(TIMEOUT)
        check(hit["path"] == "/notify", f"notified at {hit['path']}")
        check(hit["authorization"] == f"Bearer {notification_token}", "the notification does not carry our client_notification_token")
        check((hit["content_type"] or "").startswith("application/json"), f"notification content type {hit['content_type']}")
        body = json.loads(hit["body"])
        check(body.get("auth_req_id") == auth_req_id, f"notification auth_req_id {body.get('auth_req_id')}")
        check(body.get("correlation_id") == correlation_id, f"notification correlation_id {body.get('correlation_id')}")
        check(body.get("token_type") == "Bearer", f"token_type {body.get('token_type')}")
        check("error" not in body, f"notification error {body.get('error')}: {body.get('error_description')}")

        header, id_claims = verify_id_token(metadata, client_id, body["id_token"], nonce, body["access_token"])
        check(id_claims.get("acr") == "2", f"acr {id_claims.get('acr')}")
        check(id_claims.get("urn:openid:params:jwt:claim:auth_req_id") == auth_req_id, "id_token does not name the auth_req_id")
        check(MSISDN not in id_claims["sub"], f"sub is the MSISDN: {id_claims['sub']}")

        ui = requests.get(metadata["userinfo_endpoint"], headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=TIMEOUT)
        check(ui.ok and ui.json().get("sub") == id_claims["sub"], f"userinfo: HTTP {ui.status_code} {ui.text[:200]}")

        # Exactly one notification.
        time.sleep(0.5)  # a duplicate delivery would have arrived by now (the worker ticks every 250 ms)
        check(len(receiver.hits) == 1, f"{len(receiver.hits)} notifications for one request")
    finally:
        receiver.close()

    print(
        f"si-authlib: ok issuer={issuer} client={client_id} kid={header.get('kid')} acr={id_claims['acr']} "
        f"sub={id_claims['sub'][:12]}… (joserfc RS256 request object, form POST, notification with Bearer token, "
        f"id_token verified with the gateway JWKS: joserfc + authlib CodeIDToken nonce/azp/at_hash)"
    )


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 (one line of reason for the CI log)
        print(f"si-authlib: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
