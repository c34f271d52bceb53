// The package in headless Chromium: the same API cases as in Node, the test vectors, a
// 256 MiB stream with wasm memory staying small, and the Web Worker helper.
// Run: `node --test test/browser/` from pkg/ (after `cargo xtask` built pkg/gen/).
import { after, before, test } from 'node:test';
import { startServer } from './server.js';
import { launch } from './chromium.js';
import { cases } from '../shared/api-cases.js';

let server;
let browser;
let page;

before(async () => {
  server = await startServer();
  browser = await launch();
  page = await browser.newPage();
  page.on('pageerror', (e) => console.error('page error:', e));
  await page.goto(`${server.url}/pkg/test/browser/page.html`);
  await page.waitForFunction(() => document.title === 'ready');
  await page.evaluate(() => window.coffreTests.init());
});

after(async () => {
  await browser?.close();
  await server?.close();
});

for (const name of Object.keys(cases)) {
  test(`chromium: ${name}`, () => page.evaluate((n) => window.coffreTests.run(n), name));
}

test('chromium: every test vector gives its expected result', async () => {
  const { count, failures } = await page.evaluate(() => window.coffreTests.vectors());
  if (count < 50) throw new Error(`only ${count} vectors`);
  if (failures.length > 0) throw new Error(`${failures.length} failures:\n${failures.join('\n')}`);
});

test('chromium: 256 MiB stream, wasm memory stays small', async () => {
  // A fresh page, hence a fresh wasm instance: memory never shrinks, and earlier tests
  // decrypted multi-MiB vectors in one shot.
  const fresh = await browser.newPage();
  await fresh.goto(`${server.url}/pkg/test/browser/page.html`);
  await fresh.waitForFunction(() => document.title === 'ready');
  await fresh.evaluate(() => window.coffreTests.init());
  const { peak } = await fresh.evaluate(() => window.coffreTests.bigStream(256));
  await fresh.close();
  if (peak > 16 * 1024 * 1024) throw new Error(`wasm memory grew to ${peak} bytes`);
  console.log(`chromium peak wasm memory: ${(peak / 1048576).toFixed(1)} MiB`);
});

test('chromium: the baseline (non-SIMD) module works when chosen', async () => {
  const fresh = await browser.newPage();
  await fresh.goto(`${server.url}/pkg/test/browser/page.html`);
  await fresh.waitForFunction(() => document.title === 'ready');
  await fresh.evaluate(() => window.coffreTests.init('/pkg/gen/coffre_wasm_bg.wasm'));
  await fresh.evaluate(() => window.coffreTests.run('streaming'));
  await fresh.close();
});

test('chromium: Web Worker helper', () => page.evaluate(() => window.coffreTests.worker()));
