// The throttled-phone bench of issue 14 (docs/web.md, "On a slow phone"): a 360×740
// Chromium page with the CPU 4× slower, 400 ms latency, 400 kbit/s down and 100 kbit/s
// up, against a real coffre-server on loopback. Accounts are made unthrottled first;
// then each measured step runs throttled, a few times, and the median is printed.
//
//   COFFRE_SERVER_BIN=target/release/coffre-server node tests/web/bench-phone.js [runs]
//
// Not a test: it prints numbers (and their targets) and fails only if a step breaks.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WAIT, admin, newContext, startServer, stopServer, launchChromium, registerWorker, createBeneficiary, photoOfPaper } from './harness.js';

const RUNS = Number(process.argv[2] ?? 3);
const PHONE = { offline: false, latency: 400, downloadThroughput: 400_000 / 8, uploadThroughput: 100_000 / 8 };
const WORKER = { handle: 'bench.worker', passphrase: 'correct horse battery staple bench' };
const PERSON = { handle: 'bench.person', pin: '482915' };

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const since = (t) => Date.now() - t;

async function throttle(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  await cdp.send('Network.emulateNetworkConditions', PHONE);
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
  return cdp;
}

const dir = mkdtempSync(join(tmpdir(), 'coffre-bench-phone-'));
const data = join(dir, 'data');
const org = admin('org', 'create', 'Bench', '--data', data);
const invite = admin('invite', 'create', '--org', org, '--data', data);
const { server, url } = await startServer(dir, data);
const browser = await launchChromium();
const results = {};
try {
  // Unthrottled set-up: a worker, then the person's account with a PIN.
  const { page: w } = await registerWorker(browser, url, invite, WORKER);
  await createBeneficiary(w, PERSON);

  const first = [];
  const logins = [];
  const uploads = [];
  const reopen = [];
  const bytes = [];
  // A camera's 12 MP photo of an ID card (JPEG with EXIF), made small in the throttled page.
  const photo = await photoOfPaper(w, 3, 'BENCH');
  for (let run = 0; run < RUNS; run++) {
    const { page, context } = await newContext(browser, url, 'en-US');
    await page.setViewportSize({ width: 360, height: 740 });
    const cdp = await throttle(page);
    let total = 0;
    page.on('response', async (r) => {
      try {
        total += (await r.request().sizes()).responseBodySize;
      } catch {
        // a response without a body
      }
    });
    let t = Date.now();
    await page.goto(`${url}/`);
    await page.waitForSelector('#login-submit:not([disabled])', WAIT);
    first.push(since(t));
    await page.waitForLoadState('networkidle');
    bytes.push(total);

    await page.fill('#handle', PERSON.handle);
    await page.fill('#passphrase', PERSON.pin);
    t = Date.now();
    await page.click('#login-submit');
    await page.waitForSelector('h1:text("My papers")', { timeout: 120_000 });
    logins.push(since(t));

    await page.click('#add-document');
    await page.setInputFiles('#camera', { name: `IMG_2026120${run}_0900.jpg`, mimeType: 'image/jpeg', buffer: photo });
    await page.fill('#doc-name', `Paper ${run}`);
    t = Date.now();
    await page.click('#upload-submit');
    await page.waitForSelector('#notice:text("Saved. Only you can open it.")', { timeout: 90_000 }).catch(async (e) => {
      throw new Error(`${e.message}\nthe page shows: ${await page.innerText('main')}`);
    });
    uploads.push(since(t));

    await page.click(`button.doc:has-text("Paper ${run}")`);
    await page.click('#view');
    await page.waitForFunction(() => document.getElementById('preview-img')?.naturalWidth > 0, null, { timeout: 300_000 });
    await page.click('#back');
    await page.click(`button.doc:has-text("Paper ${run}")`);
    t = Date.now();
    await page.click('#view');
    await page.waitForFunction(() => document.getElementById('preview-img')?.naturalWidth > 0, null, WAIT);
    reopen.push(since(t));
    await cdp.detach();
    await context.close();
  }
  results['first usable login form (ms)'] = [median(first), '≤ 4000'];
  results['login, submit → vault (ms)'] = [median(logins), '≤ 3000'];
  results[`upload of a 12 MP photo (${Math.round(photo.length / 1000)} KB, made small in the page), save → saved (ms)`] = [median(uploads), '≤ 40000'];
  results['a paper opened before re-opens (ms)'] = [median(reopen), '≤ 500'];
  results['first load, compressed (bytes)'] = [median(bytes), '≤ 250000'];
  console.log(`throttled phone (CPU 4×, 400 ms, 400/100 kbit/s), median of ${RUNS} runs:`);
  for (const [k, [v, goal]] of Object.entries(results)) console.log(`  ${k}: ${v}   (target ${goal})`);
  assert.ok(Object.values(results).every(([v]) => Number.isFinite(v)));
} finally {
  await browser.close();
  await stopServer(server);
  rmSync(dir, { recursive: true, force: true });
}
