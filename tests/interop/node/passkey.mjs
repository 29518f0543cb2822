// Passkeys in a real browser: headless Debian Chromium driven by playwright-core, with a
// CDP virtual authenticator (CTAP2, internal transport, resident keys, user verification),
// against a sandbox whose issuer is on `localhost` (WebAuthn refuses IP addresses) and
// whose `passkey` authenticator is on.
//
// 1. Phone login to the self-service page as +447700900301 (LoA2 only, no PIN): the virtual
//    phone page taps OK (the app-push device API).
// 2. Enrolment: the account page links to the passkey page, "Add a passkey" runs
//    navigator.credentials.create() against the virtual authenticator, the passkey is listed.
// 3. LoA3 login of the same subscriber with acr_values=3 and the passkey: the waiting page
//    runs navigator.credentials.get(),
//    the browser lands on the redirect URI with a code, and the id_token says acr=3,
//    amr=["FIDO_UV"] (the passkey alone approved it; the phone is not answered).
//
// Usage: node passkey.mjs SANDBOX_JSON BASE_URL   (BASE_URL on http://localhost:PORT)
// Optional: CHROMIUM=/path/to/chromium, MOBILECONNECT_ARTIFACTS=DIR for screenshots (each
// step's page, and every open page on failure). Exit 0 with one summary line.

import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const EXECUTABLE = process.env.CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
  // The sandbox listens on 127.0.0.1 only; `localhost` must not try ::1 first.
  '--host-resolver-rules=MAP localhost 127.0.0.1',
];
const STEP_MS = 20_000;
const WHOLE_MS = 180_000;
const MSISDN = '447700900301';
const artifacts = process.env.MOBILECONNECT_ARTIFACTS;

function fail(msg) {
  throw new Error(msg);
}
function check(cond, msg) {
  if (!cond) fail(msg);
}

function readArgs() {
  const path = process.argv[2] ?? process.env.MOBILECONNECT_SANDBOX_JSON;
  if (!path) fail('usage: node passkey.mjs SANDBOX_JSON BASE_URL');
  const info = JSON.parse(readFileSync(path, 'utf8'));
  const base = (process.argv[3] ?? process.env.MOBILECONNECT_BASE_URL ?? '').replace(/\/$/, '');
  check(new URL(base).hostname === 'localhost', `BASE_URL must be on localhost (WebAuthn refuses IP addresses): ${base}`);
  const sp = info.service_providers?.find((s) => s.client_id === 'onlineshopper') ?? info.service_providers?.[0];
  check(sp?.client_id && sp?.client_secret, `no service provider in ${path}`);
  const redirectUri = sp.redirect_uris.find((u) => u.startsWith(base)) ?? sp.redirect_uris[0];
  return { base, sp, redirectUri };
}

async function shot(page, name) {
  if (!artifacts) return;
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `passkey-${name}.png`), fullPage: true }).catch(() => {});
}

async function exchange(base, sp, redirectUri, code) {
  const basic = Buffer.from(`${encodeURIComponent(sp.client_id)}:${encodeURIComponent(sp.client_secret)}`).toString('base64');
  const r = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri }),
    signal: AbortSignal.timeout(STEP_MS),
  });
  const body = await r.json();
  check(r.ok, `token exchange: HTTP ${r.status} ${JSON.stringify(body)}`);
  return JSON.parse(Buffer.from(body.id_token.split('.')[1], 'base64url').toString('utf8'));
}

/** Step 1: the self-service login, approved on the virtual phone. */
async function accountLogin(ctx, page, { base }) {
  const phone = await ctx.newPage();
  await phone.goto(`${base}/phone/${MSISDN}`);
  await phone.locator('#idle').waitFor({ state: 'visible' });

  // WebAuthn only runs in the focused page: the browser page, not the phone's.
  await page.bringToFront();
  await page.goto(`${base}/account`);
  await page.locator('input[name=msisdn]').fill(`+${MSISDN}`);
  await Promise.all([page.waitForURL(/\/authorize\/wait\//), page.locator('button[type=submit]').first().click()]);
  const card = phone.locator('.card').filter({ hasText: 'My Mobile Connect account' });
  await card.waitFor({ state: 'visible' });
  await card.locator('button.ok').click();
  await page.waitForURL((u) => u.pathname === '/account');
  check((await page.locator('body').innerText()).includes('Logged in as'), 'not logged in on the account page');
  return phone;
}

/** Step 2: enrol a passkey on the virtual authenticator. */
async function enrol(page, cdp, authenticatorId) {
  await Promise.all([page.waitForURL(/\/account\/passkeys$/), page.locator('a#passkeys').click()]);
  await page.locator('#none').waitFor({ state: 'visible' });
  await shot(page, '1-enrolment-page');
  await Promise.all([page.waitForEvent('load'), page.locator('button#add').click()]);
  await page.locator('li.passkey').first().waitFor({ state: 'visible' });
  check((await page.locator('li.passkey').count()) === 1, 'expected one listed passkey');
  const status = await page.locator('#status').innerText();
  check(!status.includes('No passkey'), `enrolment failed: ${status}`);
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  check(credentials.length === 1, `the virtual authenticator holds ${credentials.length} credentials`);
  const listed = await page.locator('li.passkey').first().getAttribute('data-id');
  check(listed === credentials[0].credentialId.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''),
    `listed passkey ${listed} is not the authenticator's ${credentials[0].credentialId}`);
  await shot(page, '2-enrolled');
  return credentials[0];
}

/** Step 3: LoA3 login with the passkey only. */
async function loa3WithPasskey(page, cdp, authenticatorId, { base, sp, redirectUri }) {
  const state = 'passkey-loa3';
  const u = new URL(`${base}/authorize`);
  for (const [k, v] of Object.entries({
    client_id: sp.client_id,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid mc_authn',
    acr_values: '3',
    version: 'mc_di_r2_v2.3',
    state,
    nonce: 'passkey-nonce',
    login_hint: `MSISDN:${MSISDN}`,
    client_name: 'OnlineShopper',
  })) {
    u.searchParams.set(k, v);
  }
  await page.goto(u.href, { waitUntil: 'commit' });
  await page.waitForURL((x) => x.href.startsWith(redirectUri), { waitUntil: 'commit' });
  const back = new URL(page.url());
  await shot(page, '3-landed');
  check(!back.searchParams.has('error'), `landed with an error: ${back.href}`);
  check(back.searchParams.get('state') === state, `state ${back.searchParams.get('state')}`);
  const claims = await exchange(base, sp, redirectUri, back.searchParams.get('code'));
  check(claims.acr === '3', `id_token acr ${claims.acr}`);
  check(JSON.stringify(claims.amr) === JSON.stringify(['FIDO_UV']), `id_token amr ${JSON.stringify(claims.amr)}`);
  // amr is the passkey's alone: whatever else the chain started (the app, if it can serve
  // LoA3) was not what approved the login.
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  check(credentials[0].signCount >= 1, `the passkey was not used (signCount ${credentials[0].signCount})`);
  return claims;
}

async function main() {
  const args = readArgs();
  const userDataDir = mkdtempSync(join(tmpdir(), 'mc-chromium-passkey-'));
  let ctx;
  try {
    ctx = await chromium.launchPersistentContext(userDataDir, {
      executablePath: EXECUTABLE,
      headless: true,
      args: FLAGS,
      timeout: STEP_MS,
    });
    ctx.setDefaultTimeout(STEP_MS);
    ctx.setDefaultNavigationTimeout(STEP_MS);
    try {
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('WebAuthn.enable');
      const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: {
          protocol: 'ctap2',
          transport: 'internal',
          hasResidentKey: true,
          hasUserVerification: true,
          isUserVerified: true,
          automaticPresenceSimulation: true,
        },
      });
      await accountLogin(ctx, page, args);
      await enrol(page, cdp, authenticatorId);
      const claims = await loa3WithPasskey(page, cdp, authenticatorId, args);
      console.log(
        `passkey: ok chromium ${ctx.browser()?.version() ?? ''}: phone login to /account, passkey enrolled on a virtual ` +
          `authenticator, LoA3 login with the passkey only (acr=${claims.acr}, amr=${JSON.stringify(claims.amr)}) landed on ${args.redirectUri}`,
      );
    } catch (e) {
      if (artifacts) {
        mkdirSync(artifacts, { recursive: true });
        let i = 0;
        for (const p of ctx.pages()) {
          await p.screenshot({ path: join(artifacts, `passkey-failure-${i++}.png`) }).catch(() => {});
        }
      }
      throw e;
    }
  } finally {
    await ctx?.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

const watchdog = setTimeout(() => {
  console.error(`passkey: FAILED: not finished within ${WHOLE_MS / 1000} s`);
  process.exit(1);
}, WHOLE_MS);
watchdog.unref();

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`passkey: FAILED: ${e?.stack ?? e}`);
    process.exit(1);
  },
);
