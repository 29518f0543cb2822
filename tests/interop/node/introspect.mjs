// npm openid-client v6 against the running mobileconnect binary's Token Manager:
// a client registered through the admin REST API (offline_access, mc_atp, the
// client_credentials grant) logs a subscriber in (code + PKCE, the sandbox phone approves),
// then tokenIntrospection, refreshTokenGrant (rotation; the old refresh token presented
// again is refused and revokes the family), clientCredentialsGrant and tokenRevocation.
// Last, a client with a daily quota of 2 gets HTTP 429 with Retry-After on its third call.
//
// Usage: node introspect.mjs [SANDBOX_JSON] [BASE_URL]
//   or   MOBILECONNECT_SANDBOX_JSON=… MOBILECONNECT_BASE_URL=… node introspect.mjs
// BASE_URL defaults to operators[0].issuer of sandbox.json.
// Exit 0 with one summary line on success; non-zero with the reason on any failure.

import { readFileSync } from 'node:fs';
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
  if (!path) fail('usage: node introspect.mjs SANDBOX_JSON [BASE_URL] (or MOBILECONNECT_SANDBOX_JSON, MOBILECONNECT_BASE_URL)');
  const info = JSON.parse(readFileSync(path, 'utf8'));
  const base = (process.argv[3] ?? process.env.MOBILECONNECT_BASE_URL ?? info.operators?.[0]?.issuer ?? '').replace(/\/$/, '');
  check(base, `no base URL: give one or put operators[0].issuer in ${path}`);
  check(info.admin_token, `no admin_token in ${path}`);
  const issuer = info.operators?.[0]?.issuer ?? base;
  return { base, issuer, adminToken: info.admin_token };
}

/** fetch with a time bound, so a hanging server fails the run instead of stalling it. */
async function fetchT(url, init = {}, ms = 30_000) {
  return fetch(url, { ...init, signal: AbortSignal.timeout(ms) });
}

/** Registers a client through the admin REST API; returns the admin API's answer. */
async function register(base, issuer, adminToken, shortName, scopes, metadata) {
  const r = await fetchT(`${base}/admin/v1/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: `${shortName} Ltd`,
      short_name: shortName,
      redirect_uris: [`${issuer}/demo-sp/callback`],
      scopes,
      metadata,
    }),
  });
  const body = await r.json();
  check(r.status === 201, `admin API: HTTP ${r.status} ${JSON.stringify(body)}`);
  check(body.client_id && body.client_secret, `admin API answer without credentials: ${JSON.stringify(body)}`);
  return body;
}

/** The phone: long-poll for the challenge (at most 3 × 10 s), then approve it. */
async function phoneApproves(base, msisdn) {
  for (let i = 0; i < 3; i++) {
    const r = await fetchT(`${base}/phone/${msisdn}/challenges?wait=10`);
    check(r.ok, `phone poll: HTTP ${r.status}`);
    const { challenges } = await r.json();
    const c = challenges?.[0];
    if (!c) continue;
    const a = await fetchT(`${base}/phone/${msisdn}/challenges/${encodeURIComponent(c.id)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ decision: 'approve' }),
    });
    const body = await a.json();
    check(body.result === 'approved', `phone answer: ${JSON.stringify(body)}`);
    return;
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

/** A login with offline_access: the token endpoint's answer. */
async function login(config, base, redirectUri) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid mc_authn offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    version: 'mc_di_r2_v2.3',
    acr_values: '2',
    login_hint: `MSISDN:${MSISDN}`,
    client_name: 'NodeTokens',
    context: 'openid-client token manager',
    binding_message: 'NODE-TM',
  });
  const phone = phoneApproves(base, MSISDN);
  phone.catch(() => {}); // reported below
  const back = await followToRedirectUri(url.href, redirectUri);
  const callback = new URL(back);
  if (callback.searchParams.has('error')) {
    fail(`login refused: ${callback.searchParams.get('error')}: ${callback.searchParams.get('error_description')}`);
  }
  await phone;
  return client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
}

/** Runs `f`, which must fail with the OAuth error `code`. */
async function refusedWith(code, what, f) {
  let err = null;
  try {
    await f();
  } catch (e) {
    err = e;
  }
  check(err, `${what}: not refused`);
  check(err.error === code, `${what}: refused with ${err.error ?? err} instead of ${code}`);
}

async function main() {
  const { base, issuer, adminToken } = readArgs();
  const opts = { execute: [client.allowInsecureRequests], timeout: 30 };

  const sp = await register(base, issuer, adminToken, 'NodeTokens', ['openid', 'mc_authn', 'offline_access', 'mc_atp'], {
    grant_types: ['client_credentials'],
    quota_per_day: 1000,
  });
  check(sp.grant_types?.includes('refresh_token'), `no refresh_token grant: ${JSON.stringify(sp.grant_types)}`);
  check(sp.grant_types?.includes('client_credentials'), `no client_credentials grant: ${JSON.stringify(sp.grant_types)}`);
  const config = await client.discovery(new URL(issuer), sp.client_id, undefined, client.ClientSecretBasic(sp.client_secret), opts);
  const meta = config.serverMetadata();
  check(meta.introspection_endpoint === `${issuer}/introspect`, `introspection_endpoint ${meta.introspection_endpoint}`);
  check(meta.revocation_endpoint === `${issuer}/revoke`, `revocation_endpoint ${meta.revocation_endpoint}`);
  check(meta.grant_types_supported?.includes('client_credentials'), 'client_credentials not in metadata');

  // A login with offline_access: access token, id_token, refresh token.
  const first = await login(config, base, sp.redirect_uris[0]);
  check(first.refresh_token, 'no refresh_token for offline_access');
  const sub = first.claims().sub;
  const info = await client.tokenIntrospection(config, first.access_token);
  check(info.active === true, `introspection: ${JSON.stringify(info)}`);
  check(info.client_id === sp.client_id, `introspection client_id ${info.client_id}`);
  check(info.sub === sub, `introspection sub ${info.sub} != id_token sub ${sub}`);
  check(info.scope?.split(' ').includes('mc_authn'), `introspection scope ${info.scope}`);
  check(info.token_type === 'Bearer' && info.acr === '2', `introspection token_type/acr ${JSON.stringify(info)}`);
  check(typeof info.exp === 'number' && typeof info.iat === 'number' && info.exp > info.iat, 'introspection exp/iat');

  // Refresh: rotated; the old refresh token again is refused and revokes the family.
  const second = await client.refreshTokenGrant(config, first.refresh_token);
  check(second.access_token && second.access_token !== first.access_token, 'refresh gave no new access token');
  check(second.refresh_token && second.refresh_token !== first.refresh_token, 'refresh token not rotated');
  check((await client.tokenIntrospection(config, second.access_token)).active === true, 'refreshed token inactive');
  await refusedWith('invalid_grant', 'reuse of a rotated refresh token', () => client.refreshTokenGrant(config, first.refresh_token));
  for (const [what, t] of [
    ['first access token', first.access_token],
    ['refreshed access token', second.access_token],
    ['live refresh token', second.refresh_token],
  ]) {
    const i = await client.tokenIntrospection(config, t);
    check(i.active === false, `${what} still active after refresh-token reuse: ${JSON.stringify(i)}`);
  }

  // client_credentials (ATP back ends), then revocation.
  const cc = await client.clientCredentialsGrant(config, { scope: 'mc_atp' });
  check(cc.access_token && cc.scope === 'mc_atp' && !cc.id_token && !cc.refresh_token, `client_credentials answer ${JSON.stringify(cc)}`);
  const ccInfo = await client.tokenIntrospection(config, cc.access_token);
  check(ccInfo.active === true && ccInfo.sub === undefined, `client_credentials introspection ${JSON.stringify(ccInfo)}`);
  await refusedWith('invalid_scope', 'client_credentials with a subscriber scope', () =>
    client.clientCredentialsGrant(config, { scope: 'mc_authn' }),
  );
  await client.tokenRevocation(config, cc.access_token);
  check((await client.tokenIntrospection(config, cc.access_token)).active === false, 'revoked token still active');
  await client.tokenRevocation(config, 'no-such-token'); // RFC 7009: 200 for unknown tokens

  // Another client learns nothing about these tokens.
  const other = await register(base, issuer, adminToken, 'NodeOther', ['openid', 'mc_authn'], { quota_per_day: 2 });
  const otherConfig = await client.discovery(new URL(issuer), other.client_id, undefined, client.ClientSecretBasic(other.client_secret), opts);
  const fresh = await client.refreshTokenGrant(config, (await login(config, base, sp.redirect_uris[0])).refresh_token);
  const seen = await client.tokenIntrospection(otherConfig, fresh.access_token);
  check(seen.active === false, `another client's token introspected: ${JSON.stringify(seen)}`);

  // Quota: that client may call twice a day; it called once, once more is fine, then 429.
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(other.client_id)}:${encodeURIComponent(other.client_secret)}`).toString('base64')}`;
  const call = () =>
    fetchT(`${base}/introspect`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=nothing',
    });
  const second_call = await call();
  check(second_call.status === 200, `second call of a 2-a-day client: HTTP ${second_call.status}`);
  const third = await call();
  check(third.status === 429, `third call of a 2-a-day client: HTTP ${third.status}`);
  const retryAfter = Number(third.headers.get('retry-after'));
  check(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 86400, `Retry-After ${third.headers.get('retry-after')}`);
  const body = await third.json();
  check(body.error && body.quota === 'per_day' && body.retry_after === retryAfter, `429 body ${JSON.stringify(body)}`);

  console.log(
    `introspect: ok issuer=${issuer} client=${sp.client_id} sub=${sub.slice(0, 12)}… ` +
      `(tokenIntrospection, refreshTokenGrant with rotation and reuse revoking the family, ` +
      `clientCredentialsGrant, tokenRevocation, other client inactive, 429 Retry-After=${retryAfter})`,
  );
}

main().catch((e) => {
  console.error(`introspect: FAILED: ${e?.stack ?? e}`);
  process.exit(1);
});
