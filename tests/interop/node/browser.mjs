// A person's login in a real browser: headless Debian Chromium driven by playwright-core
// (never a browser that Playwright downloads), against the running sandbox.
//
// 1. LoA3 with a hint: the virtual phone of +447700900302 is open in one page, the
//    authorization request (acr_values=3, scope openid mc_authz, client_name, context,
//    binding_message) in another. The waiting page shows the binding message, the phone page
//    shows the request without a reload; a wrong PIN is refused on the phone, the right one
//    (1234) approves, and the browser lands on the redirect URI with a code (which is then
//    exchanged at /token to check acr=3).
// 2. No hint: the gateway asks for the number, +447700900301 is typed and submitted, OK is
//    tapped on the phone page, and the browser lands on the redirect URI with a code.
//
// Usage: node browser.mjs [SANDBOX_JSON] [BASE_URL]   (or MOBILECONNECT_SANDBOX_JSON, MOBILECONNECT_BASE_URL)
// Optional: CHROMIUM=/path/to/chromium (default /usr/bin/chromium), MOBILECONNECT_ARTIFACTS=DIR for
// screenshots on failure. Exit 0 with one summary line; non-zero on any failure.

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
];
const STEP_MS = 20_000; // any single wait
const WHOLE_MS = 180_000; // the whole run

function fail(msg) {
  throw new Error(msg);
}
function check(cond, msg) {
  if (!cond) fail(msg);
}

function readArgs() {
  const path = process.argv[2] ?? process.env.MOBILECONNECT_SANDBOX_JSON;
  if (!path) fail('usage: node browser.mjs SANDBOX_JSON [BASE_URL] (or MOBILECONNECT_SANDBOX_JSON, MOBILECONNECT_BASE_URL)');
  const info = JSON.parse(readFileSync(path, 'utf8'));
  const base = (process.argv[3] ?? process.env.MOBILECONNECT_BASE_URL ?? info.operators?.[0]?.issuer ?? '').replace(/\/$/, '');
  check(base, `no base URL: give one or put operators[0].issuer in ${path}`);
  const sp = info.service_providers?.find((s) => s.client_id === 'onlineshopper') ?? info.service_providers?.[0];
  check(sp?.client_id && sp?.client_secret, `no service provider in ${path}`);
  const redirectUri = sp.redirect_uris.find((u) => u.startsWith(base)) ?? sp.redirect_uris[0];
  return { base, sp, redirectUri };
}

function authorizeUrl(base, params) {
  const u = new URL(`${base}/authorize`);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.href;
}

/** Counts full page loads, so "updated without reload" can be asserted. */
function countLoads(page) {
  const counter = { loads: 0 };
  page.on('load', () => {
    counter.loads += 1;
  });
  return counter;
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
  const claims = JSON.parse(Buffer.from(body.id_token.split('.')[1], 'base64url').toString('utf8'));
  return claims;
}

/** Waits until `page` is on the redirect URI with a code; returns the URL's parameters. */
async function landsOnRedirectUri(page, redirectUri, state) {
  await page.waitForURL((u) => u.href.startsWith(redirectUri), { timeout: STEP_MS, waitUntil: 'commit' });
  const u = new URL(page.url());
  check(!u.searchParams.has('error'), `landed with an error: ${u.href}`);
  check(u.searchParams.get('code'), `no code in ${u.href}`);
  check(u.searchParams.get('state') === state, `state ${u.searchParams.get('state')} != ${state}`);
  return u.searchParams;
}

/** Scenario 1: LoA3 with a hint, wrong PIN then right PIN on the phone page. */
async function loa3WithPin(ctx, { base, sp, redirectUri }) {
  const msisdn = '447700900302';
  const phone = await ctx.newPage();
  const phoneLoads = countLoads(phone);
  await phone.goto(`${base}/phone/${msisdn}`);
  await phone.locator('#number').filter({ hasText: '+447700900302' }).waitFor();
  await phone.locator('#idle').waitFor({ state: 'visible' });
  await phone.evaluate(() => {
    window.__notReloaded = true;
  });
  const loadsBefore = phoneLoads.loads;

  const state = 'browser-loa3';
  const shop = await ctx.newPage();
  await shop.goto(
    authorizeUrl(base, {
      client_id: sp.client_id,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: 'openid mc_authz',
      acr_values: '3',
      version: 'mc_di_r2_v2.3',
      state,
      nonce: 'browser-nonce-3',
      login_hint: `MSISDN:${msisdn}`,
      client_name: 'OnlineShopper',
      context: 'Pay 10 EUR',
      binding_message: 'ABC-123',
    }),
  );
  check(new URL(shop.url()).pathname.startsWith('/authorize/wait/'), `not on the waiting page: ${shop.url()}`);
  const bm = (await shop.locator('#binding-message').textContent({ timeout: STEP_MS }))?.trim();
  check(bm === 'ABC-123', `waiting page binding message ${JSON.stringify(bm)}`);
  const waitText = await shop.locator('body').innerText();
  check(waitText.includes('Pay 10 EUR'), 'waiting page does not show the context');
  check(waitText.includes('OnlineShopper'), 'waiting page does not show the client name');
  check(!waitText.includes('447700900302'), 'waiting page shows the full number');

  // The phone page picks the request up by itself.
  const card = phone.locator('.card').filter({ hasText: 'OnlineShopper' });
  await card.waitFor({ state: 'visible', timeout: STEP_MS });
  check((await card.locator('.context').innerText()).trim() === 'Pay 10 EUR', 'phone: wrong context');
  check((await card.locator('.bm').innerText()).trim() === 'ABC-123', 'phone: wrong binding message');
  check(await phone.evaluate(() => window.__notReloaded === true), 'the phone page was reloaded');
  check(phoneLoads.loads === loadsBefore, 'the phone page was reloaded (load event)');
  check(await phone.locator('#idle').isHidden(), 'phone still says idle');

  // Wrong PIN: refused on the phone, the request stays.
  await card.locator('input.pin').fill('0000');
  await card.locator('button.ok').click();
  await phone.locator('#msg').filter({ hasText: 'Wrong PIN' }).waitFor({ timeout: STEP_MS });
  check(await card.isVisible(), 'the request vanished after a wrong PIN');
  check(new URL(shop.url()).pathname.startsWith('/authorize/wait/'), 'the browser left the waiting page after a wrong PIN');

  // Right PIN: approved; the phone clears, the browser lands on the redirect URI.
  await card.locator('input.pin').fill('1234');
  await card.locator('button.ok').click();
  await card.waitFor({ state: 'detached', timeout: STEP_MS });
  const params = await landsOnRedirectUri(shop, redirectUri, state);
  const claims = await exchange(base, sp, redirectUri, params.get('code'));
  check(claims.acr === '3', `id_token acr ${claims.acr}`);
  check(claims.amr?.includes('PUSH_PIN'), `id_token amr ${JSON.stringify(claims.amr)}`);
  await phone.locator('#idle').waitFor({ state: 'visible', timeout: STEP_MS });
  await shop.close();
  await phone.close();
  return claims;
}

/** Scenario 2: no login_hint, the number is typed on the gateway's page. */
async function noHint(ctx, { base, sp, redirectUri }) {
  const msisdn = '447700900301';
  const phone = await ctx.newPage();
  await phone.goto(`${base}/phone/${msisdn}`);
  await phone.locator('#idle').waitFor({ state: 'visible' });

  const state = 'browser-nohint';
  const shop = await ctx.newPage();
  await shop.goto(
    authorizeUrl(base, {
      client_id: sp.client_id,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: 'openid mc_authn',
      acr_values: '2',
      version: 'mc_di_r2_v2.3',
      state,
      nonce: 'browser-nonce-2',
    }),
  );
  check(new URL(shop.url()).pathname.startsWith('/authorize/number/'), `no number form: ${shop.url()}`);
  const input = shop.locator('input#msisdn');
  await input.waitFor({ state: 'visible' });
  await input.fill('+447700900301');
  await Promise.all([shop.waitForURL(/\/authorize\/wait\//, { timeout: STEP_MS }), shop.locator('button[type=submit]').click()]);

  const card = phone.locator('.card').filter({ hasText: 'OnlineShopper' });
  await card.waitFor({ state: 'visible', timeout: STEP_MS });
  check((await card.locator('input.pin').count()) === 0, 'LoA2 must not ask for a PIN');
  await card.locator('button.ok').click();
  const params = await landsOnRedirectUri(shop, redirectUri, state);
  const claims = await exchange(base, sp, redirectUri, params.get('code'));
  check(claims.acr === '2', `id_token acr ${claims.acr}`);
  await shop.close();
  await phone.close();
  return claims;
}

async function main() {
  const args = readArgs();
  const userDataDir = mkdtempSync(join(tmpdir(), 'mc-chromium-'));
  const artifacts = process.env.MOBILECONNECT_ARTIFACTS;
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
      const a = await loa3WithPin(ctx, args);
      const b = await noHint(ctx, args);
      console.log(
        `browser: ok chromium ${ctx.browser()?.version() ?? ''} LoA3 (binding message on both pages, phone updated without reload, wrong PIN refused, PIN 1234 ok, acr=${a.acr}) ` +
          `and no-hint number form (acr=${b.acr}) landed on ${args.redirectUri} with a code`,
      );
    } catch (e) {
      if (artifacts) {
        mkdirSync(artifacts, { recursive: true });
        let i = 0;
        for (const p of ctx.pages()) {
          await p.screenshot({ path: join(artifacts, `browser-failure-${i++}.png`) }).catch(() => {});
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
  console.error(`browser: FAILED: not finished within ${WHOLE_MS / 1000} s`);
  process.exit(1);
}, WHOLE_MS);
watchdog.unref();

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`browser: FAILED: ${e?.stack ?? e}`);
    process.exit(1);
  },
);
