// A shared computer and the sessions list, in Chromium against the real coffre-server on
// loopback. A worker logs in on a personal browser (the "phone") and, ticking "This is a
// shared computer", on a shelter's browser whose clock the test drives (Playwright's
// page.clock). Checked through the DevTools protocol: the shelter's origin keeps nothing
// in localStorage, sessionStorage, IndexedDB or Cache Storage, while logged in, after the
// idle lock, after logging out and after the tab is closed; the countdown shows in the
// last minute (fr, en, ar) and any use resets it; the lock and the closed tab revoke the
// token on the server; the phone lists both sessions and closes the shelter's, whose
// next request lands on the login screen with a message. Screenshots:
// tests/web/screenshots/shared/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, SERVER, SHOTS, WAIT, admin, newContext, pageErrors, check, login, tokenOf, startServer, stopServer, launchChromium } from './harness.js';

const DIR = join(SHOTS, 'shared');
const WORKER = { handle: 'nadia.nord', passphrase: 'les oiseaux chantent le matin' };
const HOME = `h1:text("Hello ${WORKER.handle}")`;

/** Every screen in the three languages; back to English after. */
async function shots(page, name) {
  for (const lang of ['fr', 'ar', 'en']) {
    await page.click(`button[lang="${lang}"]`);
    await page.waitForFunction((l) => document.documentElement.lang === l, lang);
    await check(page, `${name}-${lang}`, DIR);
  }
}

/** What the origin keeps in the browser's storage, as DevTools sees it. */
async function stored(context, url) {
  let page = context.pages()[0];
  if (!page) {
    // The tab is closed: a page of the origin that runs none of the app's code.
    page = await context.newPage();
    await page.goto(`${url}/v1/openapi.json`);
  }
  const cdp = await context.newCDPSession(page);
  try {
    await cdp.send('DOMStorage.enable');
    const items = async (isLocalStorage) =>
      (await cdp.send('DOMStorage.getDOMStorageItems', { storageId: { securityOrigin: url, isLocalStorage } })).entries;
    const { databaseNames } = await cdp.send('IndexedDB.requestDatabaseNames', { securityOrigin: url });
    const { caches } = await cdp.send('CacheStorage.requestCacheNames', { securityOrigin: url });
    const { usageBreakdown } = await cdp.send('Storage.getUsageAndQuota', { origin: url });
    const used = usageBreakdown.filter((u) => u.usage > 0).map((u) => u.storageType);
    return { local: await items(true), session: await items(false), databases: databaseNames, caches: caches.map((c) => c.cacheName), used };
  } finally {
    await cdp.detach();
  }
}

/** Waits until the page is in `lang`, polling from here: the page's own timers and
 * animation frames are the test's fake clock. */
async function langIs(page, lang) {
  for (let i = 0; i < 200; i++) {
    if ((await page.getAttribute('html', 'lang')) === lang) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`the page did not switch to ${lang}: ${(await page.locator("body").innerText()).slice(0, 400)} ${pageErrors.map(String)} ${await page.evaluate(() => document.getElementById("main").outerHTML.slice(0, 300))}`);
}

const EMPTY = { local: [], session: [], databases: [], caches: [], used: [] };

/** The server's answer to `GET /v1/me` with `authorization` (a "Bearer …" header). */
const me = (url, authorization) => fetch(`${url}/v1/me`, { headers: { authorization } }).then((r) => r.status);

/** A shared-computer login on `page` (whose clock is installed). */
async function sharedLogin(page, url) {
  await page.goto(`${url}/`);
  await page.waitForSelector('#login-submit', WAIT);
  await page.check('#shared');
  await login(page, WORKER, WORKER.passphrase, HOME);
}

describe('a shared computer and the sessions list', () => {
  let dir;
  let server;
  let url;
  let browser;
  let phone;

  before(async () => {
    assert.ok(existsSync(SERVER), `build it first (${SERVER})`);
    assert.ok(existsSync(join(ROOT, 'pkg', 'gen', 'coffre_wasm_bg.wasm')), 'pkg/gen is missing: run cargo xtask test');
    rmSync(DIR, { recursive: true, force: true });
    mkdirSync(DIR, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'coffre-web-shared-'));
    const data = join(dir, 'data');
    const org = admin('org', 'create', 'Relais Nord', '--data', data);
    const invite = admin('invite', 'create', '--org', org, '--data', data);
    ({ server, url } = await startServer(dir, data));
    browser = await launchChromium();
    phone = await newContext(browser, url, 'en-US');
    const { page } = phone;
    await page.goto(`${url}/`);
    await page.click('#to-worker-register');
    await page.fill('#invite', invite);
    await page.fill('#handle', WORKER.handle);
    await page.fill('#new-passphrase', WORKER.passphrase);
    await page.fill('#confirm-passphrase', WORKER.passphrase);
    await page.click('#worker-register-submit');
    await page.waitForSelector('#notice:text("Your account is ready")', WAIT);
    await page.fill('#passphrase', WORKER.passphrase);
    await page.click('#login-submit');
    await page.waitForSelector(HOME, WAIT);
  });

  after(async () => {
    await browser?.close();
    await stopServer(server);
    if (dir) rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(pageErrors.map(String), [], 'uncaught errors in the pages');
  });

  it('a personal device keeps its small memories (what the shared computer must not)', async () => {
    const kept = await stored(phone.context, url);
    // The device credential and the kind of secret, each under a digest of the handle.
    assert.deepEqual(kept.local.map(([k]) => k).sort(), ['coffre.device', 'coffre.kind']);
    for (const [, v] of kept.local) assert.ok(!v.includes(WORKER.handle), 'the handle itself is never kept');
  });

  it('on a shared computer nothing is stored; the countdown shows in the last minute, any use resets it, then the vault locks', async () => {
    const shelter = await newContext(browser, url, 'en-US');
    const { page, context } = shelter;
    const token = tokenOf(page);
    await page.clock.install();
    await sharedLogin(page, url);
    const authorization = token();
    assert.equal(await me(url, authorization), 200);
    // A language chosen on a shared computer is not kept either.
    await page.click('button[lang="ar"]');
    await langIs(page, 'ar');
    assert.deepEqual(await stored(context, url), EMPTY, 'logged in');

    // Four minutes without use: nothing yet.
    await page.clock.fastForward('03:59');
    assert.equal(await page.isVisible('#idle-warning'), false);
    // The last minute: the countdown, in each language, readable right to left.
    for (const lang of ['fr', 'ar', 'en']) {
      await page.click(`button[lang="${lang}"]`); // a use: the five minutes start again
      await langIs(page, lang);
      assert.equal(await page.isVisible('#idle-warning'), false, 'a use hides it');
      await page.clock.fastForward('04:05');
      await page.waitForSelector('#idle-warning:not([hidden])', WAIT);
      const said = await page.locator('#idle-title').innerText();
      // Digits as the language's number format gives them (Chromium's Arabic: Western).
      const digits = new Intl.NumberFormat(lang).format(60);
      assert.ok(said.includes(digits), said);
      assert.equal(await page.getAttribute('#idle-title', 'aria-live'), 'polite');
      const clock = await page.locator('#idle-seconds').innerText();
      assert.ok(clock.startsWith(`${new Intl.NumberFormat(lang).format(0)}:${new Intl.NumberFormat(lang).format(5)}`), clock);
      assert.equal([...clock].length, 4, clock);
      await check(page, `01-countdown-${lang}`, DIR);
    }
    // The clock counts down.
    const first = await page.locator('#idle-seconds').innerText();
    await page.clock.fastForward('00:20');
    assert.notEqual(await page.locator('#idle-seconds').innerText(), first);
    // "I am still here" (or any use) resets it.
    await page.click('#idle-stay');
    assert.equal(await page.isVisible('#idle-warning'), false);
    await page.clock.fastForward('04:30');
    assert.equal(await page.isVisible('#idle-warning'), true, 'counting again from the use');
    await page.keyboard.press('Shift');
    assert.equal(await page.isVisible('#idle-warning'), false, 'a key is a use');

    // Five minutes without use: locked. The screen is the login screen, the name gone,
    // the session revoked on the server, nothing stored.
    await page.clock.fastForward('05:01');
    await page.waitForSelector('#login-submit', WAIT);
    assert.match(await page.locator('#notice').innerText(), /locked itself after 5 minutes/);
    assert.equal(await page.inputValue('#handle'), '');
    assert.equal(await page.isChecked('#shared'), true, 'the next person is on a shared computer too');
    assert.equal(await page.locator('#idle-warning').count(), 0);
    assert.equal(await page.locator(`text=${WORKER.handle}`).count(), 0, 'nothing of the vault on screen');
    assert.equal(await me(url, authorization), 401, 'the lock ended the session on the server');
    assert.deepEqual(await stored(context, url), EMPTY, 'after the idle lock');
    await check(page, '02-locked-en', DIR);

    // Logging out by hand: the same.
    await login(page, WORKER, WORKER.passphrase, HOME);
    const second = token();
    await page.click('#logout');
    await page.waitForSelector('#login-submit', WAIT);
    assert.equal(await me(url, second), 401);
    assert.deepEqual(await stored(context, url), EMPTY, 'after logging out');
    await context.close();
  });

  it('closing the tab ends the session on the server', async () => {
    const shelter = await newContext(browser, url, 'en-US');
    const { page, context } = shelter;
    const token = tokenOf(page);
    await sharedLogin(page, url);
    const authorization = token();
    assert.equal(await me(url, authorization), 200);
    await page.close();
    // The keepalive logout outlives the page; give it a moment to land.
    let status = 200;
    for (let i = 0; i < 50 && status === 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = await me(url, authorization);
    }
    assert.equal(status, 401, 'the closed tab revoked its token');
    assert.deepEqual(await stored(context, url), EMPTY, 'after the tab closed');
    await context.close();
  });

  it('the phone lists both sessions and closes the shelter’s, which is sent to the login screen', async () => {
    const shelter = await newContext(browser, url, 'en-US');
    const token = tokenOf(shelter.page);
    await sharedLogin(shelter.page, url);
    const authorization = token();

    const { page } = phone;
    await page.click('#to-account');
    await page.click('#to-sessions');
    await page.waitForSelector('#sessions .session-item >> nth=1', WAIT);
    const items = page.locator('#sessions .session-item');
    assert.equal(await items.count(), 2);
    const texts = await items.allInnerTexts();
    assert.match(texts[0], /This device/);
    assert.doesNotMatch(texts[0], /Shared computer/);
    assert.match(texts[1], /Shared computer/);
    for (const t of texts) assert.match(t, /Chrome on Linux/);
    assert.equal(await page.locator('#sessions .session-item:first-child button').count(), 0, 'no close button on this one');
    await shots(page, '03-sessions');

    await page.click('#sessions .session-item:nth-child(2) button');
    await page.waitForSelector('#notice:text("That session is closed")', WAIT);
    await page.waitForFunction(() => document.querySelectorAll('#sessions .session-item').length === 1);
    assert.equal(await page.isVisible('#close-others'), false, 'no others left');
    assert.equal(await me(url, authorization), 401);
    await check(page, '04-session-closed-en', DIR);

    // The shelter's next request: the login screen, saying so, with nothing kept.
    await shelter.page.click('#to-account');
    await shelter.page.click('#to-sessions');
    await shelter.page.waitForSelector('#login-submit', WAIT);
    assert.match(await shelter.page.locator('#notice').innerText(), /You were logged out/);
    assert.equal(await shelter.page.inputValue('#handle'), '', 'a shared computer does not keep the name');
    assert.deepEqual(await stored(shelter.context, url), EMPTY);

    // "Close all the others" from the phone, with two more sessions about.
    const a = await newContext(browser, url, 'en-US');
    await sharedLogin(a.page, url);
    await page.click('#sessions-back');
    await page.click('#to-sessions');
    await page.waitForSelector('#close-others:not([hidden])', WAIT);
    await page.click('#close-others');
    await page.waitForSelector('#notice:text("Every other session is closed")', WAIT);
    await page.waitForFunction(() => document.querySelectorAll('#sessions .session-item').length === 1);
    await a.context.close();
    await shelter.context.close();
  });
});
