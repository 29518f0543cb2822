// The whole sandbox story in a real browser, as a new user lives it: headless Debian Chromium
// driven by playwright-core (never a browser that Playwright downloads), against the running
// multi-operator sandbox.
//
// 1. The shop (/shop): "Log in with Mobile Connect" → Discovery's operator-selection page →
//    the number of a Bluewave Mobile subscriber typed → that operator's waiting page (its own
//    issuer, /operators/bluewave) → OK on the virtual phone (a second page) → back at the
//    shop, logged in, account created: PCR, acr and amr on the account page. The phone is
//    Bluewave's app: its key registered at Bluewave's device API, its OK a signed answer
//    posted there (not the sandbox's unsigned phone API).
// 2. A payment: "Pay" → mc_authz at the same operator → the phone shows the amount (context)
//    and the code (binding_message) → OK → the payment is on the account page with what the
//    phone displayed (from the id_token's displayed_data).
//
// Screenshots of every step go to $MOBILECONNECT_ARTIFACTS/story (else ./test-output/story).
//
// Usage: node story.mjs [SANDBOX_JSON] [BASE_URL]   (or MOBILECONNECT_SANDBOX_JSON, MOBILECONNECT_BASE_URL)
// Optional: CHROMIUM=/path/to/chromium (default /usr/bin/chromium). Exit 0 with one summary line.

import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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
  if (!path) fail('usage: node story.mjs SANDBOX_JSON [BASE_URL] (or MOBILECONNECT_SANDBOX_JSON, MOBILECONNECT_BASE_URL)');
  const info = JSON.parse(readFileSync(path, 'utf8'));
  const base = (process.argv[3] ?? process.env.MOBILECONNECT_BASE_URL ?? info.operators?.[0]?.issuer ?? '').replace(/\/$/, '');
  check(base, `no base URL: give one or put operators[0].issuer in ${path}`);
  const bluewave = info.operators?.find((o) => o.id === 'bluewave');
  check(bluewave, `no Bluewave operator in ${path}: is this the multi-operator sandbox?`);
  const subscriber = info.subscribers?.find((s) => s.operator === 'bluewave' && !s.pin && s.status === 'active');
  check(subscriber, `no Bluewave test subscriber without a PIN in ${path}`);
  return { base, bluewave, subscriber };
}

async function main() {
  const { base, bluewave, subscriber } = readArgs();
  const shots = resolve(join(process.env.MOBILECONNECT_ARTIFACTS ?? 'test-output', 'story'));
  mkdirSync(shots, { recursive: true });
  let n = 0;
  const shot = async (page, name) => {
    n += 1;
    await page.screenshot({ path: join(shots, `${String(n).padStart(2, '0')}-${name}.png`), fullPage: true });
  };
  const userDataDir = mkdtempSync(join(tmpdir(), 'mc-story-'));
  let ctx;
  try {
    ctx = await chromium.launchPersistentContext(userDataDir, {
      executablePath: EXECUTABLE,
      headless: true,
      args: FLAGS,
      timeout: STEP_MS,
      viewport: { width: 900, height: 800 },
    });
    ctx.setDefaultTimeout(STEP_MS);
    ctx.setDefaultNavigationTimeout(STEP_MS);
    try {
      // The subscriber's phone, open before anything happens.
      const phone = await ctx.newPage();
      await phone.goto(subscriber.phone_url);
      await phone.locator('#number').filter({ hasText: subscriber.msisdn }).waitFor();
      await phone.locator('#idle').waitFor({ state: 'visible' });
      // The page registered its device key with the serving operator (Bluewave).
      await phone.locator('#number[data-device]').waitFor({ state: 'attached' });
      const deviceApi = await phone.evaluate(() => document.body.dataset.deviceApi);
      check(
        deviceApi === `${new URL(bluewave.issuer).pathname}/device/v1`,
        `the phone uses the device API ${deviceApi}, not ${bluewave.issuer}/device/v1`,
      );

      // 1. Log in with Mobile Connect.
      const shop = await ctx.newPage();
      await shop.goto(`${base}/shop`);
      await shot(shop, 'shop');
      await shop.locator('#mc-login').click();
      await shop.locator('#msisdn').waitFor();
      check(new URL(shop.url()).pathname.includes('/operator-selection'), `not on the operator-selection page: ${shop.url()}`);
      const offered = await shop.locator('button[id^="op-"]').allInnerTexts();
      check(offered.length === 3, `the selection page offers ${offered.length} operators: ${offered.join(', ')}`);
      await shop.locator('#msisdn').fill(subscriber.msisdn);
      await shot(shop, 'operator-selection');
      await shop.locator('#next').click();
      await shop.waitForURL((u) => u.href.startsWith(`${bluewave.issuer}/authorize/wait/`));
      await shot(shop, 'waiting-at-bluewave');

      const loginCard = phone.locator('.card').first();
      await loginCard.waitFor();
      const cardText = await loginCard.innerText();
      check(cardText.includes('OnlineShopper'), `the phone does not name the shop: ${cardText}`);
      await shot(phone, 'phone-login');
      const signed = phone.waitForResponse(
        (r) => r.request().method() === 'POST' && r.url().startsWith(`${bluewave.issuer}/device/v1/challenges/`),
      );
      await loginCard.locator('button.ok').click();
      const answered = await (await signed).json();
      check(answered.result === 'approved', `the signed answer at Bluewave: ${JSON.stringify(answered)}`);

      await shop.waitForURL(`${base}/shop/account`);
      const notice = await shop.locator('#notice').innerText();
      check(notice.includes('created'), `no new account: ${notice}`);
      const operator = await shop.locator('#operator').innerText();
      check(operator === bluewave.name, `account operator ${operator}, expected ${bluewave.name}`);
      const pcr = (await shop.locator('#pcr').innerText()).trim();
      check(pcr.length > 10 && !pcr.includes(subscriber.msisdn.replace('+', '')), `PCR ${pcr}`);
      const acr = (await shop.locator('#acr').innerText()).trim();
      check(acr === '2', `acr ${acr}`);
      const amr = (await shop.locator('#amr').innerText()).trim();
      check(amr.length > 0, 'no amr');
      await shot(shop, 'logged-in');

      // 2. Pay.
      await shop.goto(`${base}/shop`);
      await shop.locator('#pay').click();
      await shop.waitForURL((u) => u.href.startsWith(`${bluewave.issuer}/authorize/wait/`));
      const payCard = phone.locator('.card').first();
      await payCard.waitFor();
      const context = (await payCard.locator('.context').innerText()).trim();
      const code = (await payCard.locator('.bm').innerText()).trim();
      check(context.includes('GBP 42.00'), `the phone shows ${JSON.stringify(context)}`);
      check(/^PAY-[A-Z0-9]{4}$/.test(code), `binding message ${JSON.stringify(code)}`);
      await shot(phone, 'phone-payment');
      await payCard.locator('button.ok').click();

      await shop.waitForURL(`${base}/shop/account`);
      const paid = await shop.locator('#notice').innerText();
      check(paid.includes('Payment approved'), `after paying: ${paid}`);
      const shown = await shop.locator('#payments .shown').first().innerText();
      check(shown.includes(context) && shown.includes(code), `displayed_data ${JSON.stringify(shown)}`);
      await shot(shop, 'paid');

      console.log(
        `story: ok chromium ${ctx.browser()?.version() ?? ''}: shop → operator selection → ${bluewave.name} (${bluewave.issuer}) → phone OK (signed, at its device API) → ` +
          `account (acr=${acr}, amr=${amr}) → payment "${context}" code ${code} approved; ${n} screenshots in ${shots}`,
      );
    } catch (e) {
      let i = 0;
      for (const p of ctx.pages()) {
        await p.screenshot({ path: join(shots, `failure-${i++}.png`) }).catch(() => {});
      }
      throw e;
    }
  } finally {
    await ctx?.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

const watchdog = setTimeout(() => {
  console.error(`story: FAILED: not finished within ${WHOLE_MS / 1000} s`);
  process.exit(1);
}, WHOLE_MS);
watchdog.unref();

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`story: FAILED: ${e?.stack ?? e}`);
    process.exit(1);
  },
);
