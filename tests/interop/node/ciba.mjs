// npm openid-client v6 completes OpenID CIBA (poll mode) against the running mobileconnect
// binary: a CIBA client is registered through the admin REST API, discovered,
// initiateBackchannelAuthentication → the sandbox phone approves through its JSON API →
// pollBackchannelAuthenticationGrant → id_token claims and signature are checked. A second
// poll of the used auth_req_id must be refused (take-once).
//
// Usage: node ciba.mjs [SANDBOX_JSON] [BASE_URL]
//   or   MOBILECONNECT_SANDBOX_JSON=… MOBILECONNECT_BASE_URL=… node ciba.mjs
// BASE_URL defaults to operators[0].issuer of sandbox.json.
// Exit 0 with one summary line on success; non-zero with the reason on any failure.

import { readFileSync } from 'node:fs';
import { createHash, createPublicKey, verify } from 'node:crypto';
import * as client from 'openid-client';

const MSISDN = '447700900301'; // LoA2 subscriber of the sandbox (no PIN)
const BINDING_MESSAGE = 'NODE-CIBA-1';

function fail(msg) {
  throw new Error(msg);
}

function check(cond, msg) {
  if (!cond) fail(msg);
}

function readArgs() {
  const path = process.argv[2] ?? process.env.MOBILECONNECT_SANDBOX_JSON;
  if (!path) fail('usage: node ciba.mjs SANDBOX_JSON [BASE_URL] (or MOBILECONNECT_SANDBOX_JSON, MOBILECONNECT_BASE_URL)');
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

/** Registers a CIBA poll client through the admin REST API; returns {client_id, client_secret}. */
async function registerCibaClient(base, issuer, adminToken) {
  const r = await fetchT(`${base}/admin/v1/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'Node CIBA Ltd',
      short_name: 'NodeCiba',
      redirect_uris: [`${issuer}/demo-sp/callback`],
      scopes: ['openid', 'mc_authn'],
      metadata: {
        backchannel_token_delivery_mode: 'poll',
        // Required for CIBA clients (pairwise subjects); not fetched for client_secret_basic.
        jwks_uri: `${issuer}/demo-sp/jwks.json`,
      },
    }),
  });
  const body = await r.json();
  check(r.status === 201, `admin API: HTTP ${r.status} ${JSON.stringify(body)}`);
  check(body.client_id && body.client_secret, `admin API answer without credentials: ${JSON.stringify(body)}`);
  check(body.grant_types?.includes('urn:openid:params:grant-type:ciba'), `no CIBA grant: ${JSON.stringify(body.grant_types)}`);
  return body;
}

/** The phone: long-poll for the challenge (at most 3 × 10 s), check it, approve it. */
async function phoneApproves(base, msisdn, expect) {
  for (let i = 0; i < 3; i++) {
    const r = await fetchT(`${base}/phone/${msisdn}/challenges?wait=10`);
    check(r.ok, `phone poll: HTTP ${r.status}`);
    const { challenges } = await r.json();
    const c = challenges?.[0];
    if (!c) continue;
    check(c.client_name === expect.client_name, `phone shows client_name ${JSON.stringify(c.client_name)}`);
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

/** Verifies the RS256 signature of the id_token against the issuer's JWKS (node:crypto). */
async function verifyIdTokenSignature(config, idToken) {
  const [h, p, s] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
  check(header.alg === 'RS256', `id_token alg ${header.alg}`);
  const r = await fetchT(config.serverMetadata().jwks_uri);
  check(r.ok, `JWKS: HTTP ${r.status}`);
  const { keys } = await r.json();
  const jwk = keys.find((k) => k.kid === header.kid && (k.use ?? 'sig') === 'sig');
  check(jwk, `id_token kid ${header.kid} is not a signing key of the JWKS`);
  const ok = verify('sha256', Buffer.from(`${h}.${p}`), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'));
  check(ok, 'id_token signature does not verify with the JWKS key');
  return header.kid;
}

async function main() {
  const { base, issuer, adminToken } = readArgs();
  const sp = await registerCibaClient(base, issuer, adminToken);
  const opts = { execute: [client.allowInsecureRequests], timeout: 30 };
  const config = await client.discovery(new URL(issuer), sp.client_id, undefined, client.ClientSecretBasic(sp.client_secret), opts);
  const meta = config.serverMetadata();
  check(meta.issuer === issuer, `metadata issuer ${meta.issuer} != ${issuer}`);
  check(meta.backchannel_authentication_endpoint === `${base}/bc-authorize`, `backchannel_authentication_endpoint ${meta.backchannel_authentication_endpoint}`);
  check(meta.backchannel_token_delivery_modes_supported?.includes('poll'), `poll not in ${JSON.stringify(meta.backchannel_token_delivery_modes_supported)}`);
  check(meta.grant_types_supported?.includes('urn:openid:params:grant-type:ciba'), 'CIBA grant not in metadata');

  const started = await client.initiateBackchannelAuthentication(config, {
    scope: 'openid mc_authn',
    login_hint: `MSISDN:${MSISDN}`,
    binding_message: BINDING_MESSAGE,
    acr_values: '2',
  });
  check(typeof started.auth_req_id === 'string' && started.auth_req_id.length >= 32, `auth_req_id ${started.auth_req_id}`);
  check(started.expires_in > 0, `expires_in ${started.expires_in}`);
  check(started.interval === 1, `interval ${started.interval} (the sandbox polls every second; without it openid-client waits 5 s)`);

  // The phone answers while openid-client polls (authorization_pending until then).
  const phone = phoneApproves(base, MSISDN, { client_name: 'NodeCiba', binding_message: BINDING_MESSAGE });
  phone.catch(() => {}); // reported below
  const t0 = Date.now();
  const tokens = await client.pollBackchannelAuthenticationGrant(config, started, undefined, { signal: AbortSignal.timeout(60_000) });
  await phone;
  check(tokens.token_type?.toLowerCase() === 'bearer', `token_type ${tokens.token_type}`);
  check(typeof tokens.access_token === 'string' && tokens.access_token.length > 0, 'no access_token');
  const claims = tokens.claims();
  check(claims, 'no id_token claims');
  check(claims.iss === issuer, `iss ${claims.iss}`);
  check([claims.aud].flat().includes(sp.client_id), `aud ${JSON.stringify(claims.aud)}`);
  check(claims.acr === '2', `acr ${JSON.stringify(claims.acr)}`);
  check(Array.isArray(claims.amr) && claims.amr.includes('PUSH_OK'), `amr ${JSON.stringify(claims.amr)}`);
  check(typeof claims.sub === 'string' && claims.sub.length > 0 && !claims.sub.includes(MSISDN), `sub ${claims.sub}`);
  const hlh = createHash('sha256').update(`MSISDN:${MSISDN}`).digest('hex');
  check(claims.hashed_login_hint === hlh, `hashed_login_hint ${claims.hashed_login_hint} != ${hlh}`);
  check(!tokens.id_token.includes(MSISDN), 'the id_token carries the MSISDN in clear');
  const kid = await verifyIdTokenSignature(config, tokens.id_token);

  // The access token works at UserInfo.
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  check(userinfo.sub === claims.sub, `userinfo sub ${userinfo.sub}`);

  // Take-once: polling the used auth_req_id again is invalid_grant.
  let refused = null;
  try {
    await client.pollBackchannelAuthenticationGrant(config, started, undefined, { signal: AbortSignal.timeout(30_000) });
  } catch (e) {
    refused = e;
  }
  check(refused?.error === 'invalid_grant', `a second poll of a used auth_req_id was not invalid_grant: ${refused}`);

  console.log(
    `ciba: ok issuer=${issuer} client=${sp.client_id} acr=${claims.acr} amr=${claims.amr.join(',')} kid=${kid} ` +
      `sub=${claims.sub.slice(0, 12)}… tokens after ${Date.now() - t0} ms ` +
      `(admin API registration, discovery, initiateBackchannelAuthentication, phone approve, pollBackchannelAuthenticationGrant, take-once)`,
  );
}

main().catch((e) => {
  console.error(`ciba: FAILED: ${e?.stack ?? e}`);
  process.exit(1);
});
