// npm openid-client v6 against the running mobileconnect binary: discovery, authorization
// code + PKCE (S256) with the Mobile Connect extras, id_token checks, UserInfo.
//
// The phone is answered through the sandbox's phone JSON API while this script follows the
// gateway's redirects by hand (fetch with redirect: 'manual'), as a server-side SP would.
//
// Usage: node oidc-client.mjs [SANDBOX_JSON] [BASE_URL]
//   or   MOBILECONNECT_SANDBOX_JSON=… MOBILECONNECT_BASE_URL=… node oidc-client.mjs
// BASE_URL defaults to operators[0].issuer of sandbox.json.
// Exit 0 with one summary line on success; non-zero with the reason on any failure.

import { readFileSync } from 'node:fs';
import { createHash, createPublicKey, verify } from 'node:crypto';
import * as client from 'openid-client';

const MSISDN = '447700900301'; // LoA2 subscriber of the sandbox (no PIN)
const HOPS = 40;

function fail(msg) {
  throw new Error(msg);
}

function check(cond, msg) {
  if (!cond) fail(msg);
}

function readArgs() {
  const path = process.argv[2] ?? process.env.MOBILECONNECT_SANDBOX_JSON;
  if (!path) fail('usage: node oidc-client.mjs SANDBOX_JSON [BASE_URL] (or MOBILECONNECT_SANDBOX_JSON, MOBILECONNECT_BASE_URL)');
  const info = JSON.parse(readFileSync(path, 'utf8'));
  const base = (process.argv[3] ?? process.env.MOBILECONNECT_BASE_URL ?? info.operators?.[0]?.issuer ?? '').replace(/\/$/, '');
  check(base, `no base URL: give one or put operators[0].issuer in ${path}`);
  const sp = info.service_providers?.find((s) => s.client_id === 'onlineshopper') ?? info.service_providers?.[0];
  check(sp?.client_id && sp?.client_secret, `no service provider in ${path}`);
  const issuer = info.operators?.[0]?.issuer ?? base;
  return { base, issuer, sp };
}

/** fetch with a time bound, so a hanging server fails the run instead of stalling it. */
async function fetchT(url, init = {}, ms = 30_000) {
  return fetch(url, { ...init, signal: AbortSignal.timeout(ms) });
}

/** The phone: long-poll for the challenge (at most 3 × 10 s), then answer it. */
async function phoneApproves(base, msisdn, expect) {
  for (let i = 0; i < 3; i++) {
    const r = await fetchT(`${base}/phone/${msisdn}/challenges?wait=10`);
    check(r.ok, `phone poll: HTTP ${r.status}`);
    const { challenges } = await r.json();
    const c = challenges?.[0];
    if (!c) continue;
    check(c.client_name === expect.client_name, `phone shows client_name ${JSON.stringify(c.client_name)}`);
    check(c.context === expect.context, `phone shows context ${JSON.stringify(c.context)}`);
    check(c.binding_message === expect.binding_message, `phone shows binding_message ${JSON.stringify(c.binding_message)}`);
    check(c.loa === '2', `phone challenge loa ${c.loa}`);
    const a = await fetchT(`${base}/phone/${msisdn}/challenges/${encodeURIComponent(c.id)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ decision: 'approve' }),
    });
    const body = await a.json();
    check(body.result === 'approved', `phone answer: ${JSON.stringify(body)}`);
    return c;
  }
  fail(`no challenge reached phone ${msisdn} within 30 s`);
}

/** GET the authorization URL and follow the gateway's redirects until the redirect URI. */
async function followToRedirectUri(start, redirectUri) {
  let url = start;
  for (let i = 0; i < HOPS; i++) {
    const r = await fetchT(url, { redirect: 'manual' });
    check(r.status >= 300 && r.status < 400, `expected a redirect from ${url}, got ${r.status}: ${(await r.text()).slice(0, 300)}`);
    const next = new URL(r.headers.get('location'), url).href;
    if (next.startsWith(redirectUri)) return next;
    url = next;
  }
  fail(`no redirect to ${redirectUri} after ${HOPS} hops`);
}

function b64urlJson(seg) {
  return JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));
}

/** Verifies the RS256 signature of the id_token against the issuer's JWKS (node:crypto). */
async function verifyIdTokenSignature(config, idToken) {
  const [h, p, s] = idToken.split('.');
  const header = b64urlJson(h);
  check(header.alg === 'RS256', `id_token alg ${header.alg}`);
  const r = await fetchT(config.serverMetadata().jwks_uri);
  check(r.ok, `JWKS: HTTP ${r.status}`);
  const { keys } = await r.json();
  const jwk = keys.find((k) => k.kid === header.kid && (k.use ?? 'sig') === 'sig');
  check(jwk, `id_token kid ${header.kid} is not a signing key of the JWKS`);
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const ok = verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'));
  check(ok, 'id_token signature does not verify with the JWKS key');
  return header.kid;
}

async function oneLogin(config, { base, sp }, label, { wrongVerifier = false } = {}) {
  const redirectUri = sp.redirect_uris[0];
  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const extras = {
    client_name: sp.short_name ?? 'OnlineShopper',
    context: `openid-client ${label}`,
    binding_message: 'NODE-1',
  };
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid mc_authn',
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state,
    nonce,
    version: 'mc_di_r2_v2.3',
    acr_values: '2',
    login_hint: `MSISDN:${MSISDN}`,
    ...extras,
  });

  const phone = phoneApproves(base, MSISDN, extras);
  phone.catch(() => {}); // reported below
  const back = await followToRedirectUri(url.href, redirectUri);
  const callback = new URL(back);
  if (callback.searchParams.has('error')) {
    fail(`login refused: ${callback.searchParams.get('error')}: ${callback.searchParams.get('error_description')}`);
  }
  await phone;

  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: wrongVerifier ? client.randomPKCECodeVerifier() : codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  check(tokens.token_type?.toLowerCase() === 'bearer', `token_type ${tokens.token_type}`);
  const claims = tokens.claims();
  check(claims, 'no id_token claims');
  check(claims.acr === '2', `acr ${JSON.stringify(claims.acr)}`);
  check(Array.isArray(claims.amr) && claims.amr.includes('PUSH_OK'), `amr ${JSON.stringify(claims.amr)}`);
  check(typeof claims.sub === 'string' && claims.sub.length > 0, 'no sub');
  check(claims.sub !== MSISDN && !claims.sub.includes(MSISDN), `sub is the MSISDN: ${claims.sub}`);
  const hlh = createHash('sha256').update(`MSISDN:${MSISDN}`).digest('hex');
  check(claims.hashed_login_hint === hlh, `hashed_login_hint ${claims.hashed_login_hint} != ${hlh}`);
  check(typeof claims.auth_time === 'number', 'no auth_time');
  check(!tokens.id_token.includes(MSISDN), 'the id_token carries the MSISDN in clear');
  const kid = await verifyIdTokenSignature(config, tokens.id_token);

  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  check(userinfo.sub === claims.sub, `userinfo sub ${userinfo.sub}`);
  check(userinfo.phone_number === undefined, 'mc_authn must not release the phone number');
  return { claims, kid };
}

async function main() {
  const args = readArgs();
  const { issuer, sp } = args;
  const opts = { execute: [client.allowInsecureRequests], timeout: 30 };

  // client_secret_basic (the README's way), then client_secret_post.
  const basic = await client.discovery(new URL(issuer), sp.client_id, undefined, client.ClientSecretBasic(sp.client_secret), opts);
  const meta = basic.serverMetadata();
  check(meta.issuer === issuer, `metadata issuer ${meta.issuer} != ${issuer}`);
  check(meta.code_challenge_methods_supported?.includes('S256'), 'S256 not in metadata');
  const first = await oneLogin(basic, args, 'basic');

  const post = await client.discovery(new URL(issuer), sp.client_id, undefined, client.ClientSecretPost(sp.client_secret), opts);
  const second = await oneLogin(post, args, 'post');
  check(second.claims.sub === first.claims.sub, 'sub differs between two logins of the same SP and user');

  // PKCE is enforced: the right code with a wrong verifier is refused.
  let refused = null;
  try {
    await oneLogin(basic, args, 'pkce', { wrongVerifier: true });
  } catch (e) {
    refused = e;
  }
  check(refused && refused.error === 'invalid_grant', `a wrong PKCE verifier was not refused with invalid_grant: ${refused}`);

  console.log(
    `oidc-client: ok issuer=${issuer} client=${sp.client_id} ` +
      `acr=${first.claims.acr} amr=${first.claims.amr.join(',')} kid=${first.kid} sub=${first.claims.sub.slice(0, 12)}… ` +
      `(client_secret_basic and client_secret_post, PKCE S256 enforced, id_token signature, userinfo)`,
  );
}

main().catch((e) => {
  console.error(`oidc-client: FAILED: ${e?.stack ?? e}`);
  process.exit(1);
});
