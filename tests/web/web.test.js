// End-to-end test of web/ in Debian's Chromium (playwright-core) against the real release
// coffre-server on loopback with a fresh data dir. Run: `cd tests/web && npm ci && node --test`
// (after `cargo build --release -p coffre-server --locked` and `cargo xtask test`, which
// builds pkg/gen/). Screenshots of every screen go to tests/web/screenshots/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const SERVER = process.env.COFFRE_SERVER_BIN ?? join(ROOT, 'target', 'release', 'coffre-server');
const SHOTS = join(HERE, 'screenshots');
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const VIEWPORTS = [
  { width: 360, height: 740 },
  { width: 1280, height: 800 },
];
const WAIT = { timeout: 60_000 };

const WORKER = { handle: 'camille.relais', passphrase: 'le chat dort sur le toit' };
const PERSON = { handle: 'amina.k', pin: '482915' };
// Canaries: must never appear in clear in the server's data dir.
const FILES = [
  {
    name: 'Carte identite Amina',
    category: 'identity',
    file: 'carte.png',
    mimeType: 'image/png',
    buffer: Buffer.concat([Buffer.from('CANARY-IDENTITY-7f3a9c '), Buffer.alloc(150_000, 7)]),
  },
  {
    name: 'Attestation hebergement',
    category: 'housing',
    file: 'attestation.pdf',
    mimeType: 'application/pdf',
    buffer: Buffer.from('%PDF-1.4 CANARY-HOUSING-51d2e0 attestation'),
  },
];

function admin(...args) {
  const r = spawnSync(SERVER, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `coffre-server ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitHealthy(url, child) {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`coffre-server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('coffre-server did not become healthy');
}

/** A browser context that may only talk to the test server. */
async function newContext(browser, url, locale) {
  const context = await browser.newContext({ locale, viewport: VIEWPORTS[0], acceptDownloads: true });
  await context.route('**/*', (route) =>
    route.request().url().startsWith(`${url}/`) ? route.continue() : route.abort(),
  );
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e));
  return { context, page };
}
const pageErrors = [];

/** axe-core on the current screen (0 serious/critical), then both screenshot sizes. */
async function check(page, name) {
  await page.waitForLoadState('networkidle');
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ path: AXE });
  const { violations } = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    [],
    `axe on screen "${name}"`,
  );
  for (const vp of VIEWPORTS) {
    await page.setViewportSize(vp);
    await page.screenshot({ path: join(SHOTS, `${name}-${vp.width}.png`), fullPage: true });
  }
  await page.setViewportSize(VIEWPORTS[0]);
  // Usable at 360 px: nothing wider than the screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `screen "${name}" is ${overflow}px wider than 360px`);
}

const text = (page, selector) => page.locator(selector).innerText();

describe('web app', () => {
  let dir;
  let server;
  let url;
  let invite;
  let browser;
  let worker;
  let person;

  before(async () => {
    assert.ok(existsSync(SERVER), `build it first: cargo build --release -p coffre-server --locked (${SERVER})`);
    assert.ok(existsSync(join(ROOT, 'pkg', 'gen', 'coffre_wasm_bg.wasm')), 'pkg/gen is missing: run cargo xtask test');
    rmSync(SHOTS, { recursive: true, force: true });
    mkdirSync(SHOTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'coffre-web-'));
    const data = join(dir, 'data');
    const org = admin('org', 'create', 'Relais Test', '--data', data);
    invite = admin('invite', 'create', '--org', org, '--data', data);
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    server = spawn(
      SERVER,
      ['serve', '--listen', `127.0.0.1:${port}`, '--data', data, '--server-key', join(dir, 'server.key'),
        '--web', join(ROOT, 'web'), '--pkg', join(ROOT, 'pkg')],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } },
    );
    server.stderr.on('data', () => {});
    await waitHealthy(url, server);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });

  after(async () => {
    await browser?.close();
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('has every string in both languages and the vendored QR encoder unchanged', async () => {
    const en = (await import(pathToFileURL(join(ROOT, 'web/i18n/en.js')))).default;
    const fr = (await import(pathToFileURL(join(ROOT, 'web/i18n/fr.js')))).default;
    assert.deepEqual(Object.keys(fr).sort(), Object.keys(en).sort());
    for (const [k, v] of Object.entries(fr)) assert.ok(typeof v === 'string' && v.length > 0, `fr.${k}`);
    assert.ok(
      readFileSync(join(ROOT, 'web/vendor/qr.js')).equals(readFileSync(join(HERE, 'node_modules/qr/index.js'))),
      'web/vendor/qr.js must be the file of the npm package qr@0.7.0',
    );
  });

  it('story 1: a worker registers with an invite code and logs in (French first, then English)', async () => {
    worker = await newContext(browser, url, 'fr-FR');
    const { page } = worker;
    const responses = [];
    page.on('response', (r) => responses.push(r));
    await page.goto(`${url}/`);
    await page.waitForSelector('h1:text("Ouvrir mon coffre")', WAIT);
    await page.waitForLoadState('networkidle');
    // First load on a weak connection: HTML, JS, CSS and wasm, compressed, within 250 KB;
    // the app's own HTML+JS+CSS within 25 KB.
    let total = 0;
    let app = 0;
    for (const r of responses.splice(0)) {
      const { responseBodySize } = await r.request().sizes();
      total += responseBodySize;
      if (!new URL(r.url()).pathname.startsWith('/pkg/')) app += responseBodySize;
    }
    console.log(`first load: ${total} bytes in all, ${app} bytes of web/ (compressed)`);
    assert.ok(total <= 250_000, `first load is ${total} bytes`);
    assert.ok(app <= 25_000, `web/ first load is ${app} bytes`);
    assert.equal(await page.getAttribute('html', 'lang'), 'fr');
    assert.equal(await page.getAttribute('html', 'dir'), 'ltr');
    await check(page, '01-login-fr');

    // Switching language keeps what was typed.
    await page.fill('#handle', 'typed.before');
    await page.click('button[lang="en"]');
    await page.waitForSelector('h1:text("Open my vault")');
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.equal(await page.inputValue('#handle'), 'typed.before');
    await check(page, '02-login-en');

    await page.click('#to-worker-register');
    await page.waitForSelector('h1:text("Create my social worker account")');
    await check(page, '03-worker-register');
    // A wrong invite: plain words, nothing typed is lost.
    await page.fill('#invite', 'not-a-real-invite');
    await page.fill('#handle', WORKER.handle);
    await page.fill('#new-passphrase', WORKER.passphrase);
    await page.fill('#confirm-passphrase', WORKER.passphrase);
    await page.click('#worker-register-submit');
    await page.waitForSelector('#form-error:text("This invite code does not work")', WAIT);
    assert.equal(await page.inputValue('#handle'), WORKER.handle);
    assert.equal(await page.inputValue('#new-passphrase'), WORKER.passphrase);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'invite');
    await check(page, '04-worker-register-error');

    await page.fill('#invite', invite);
    await page.click('#worker-register-submit');
    await page.waitForSelector('#notice:text("Your account is ready")', WAIT);
    assert.equal(await page.inputValue('#handle'), WORKER.handle);
    await page.fill('#passphrase', WORKER.passphrase);
    await page.click('#login-submit');
    await page.waitForSelector(`h1:text("Hello ${WORKER.handle}")`, WAIT);
    await check(page, '05-worker-home');
  });

  it('story 2: the worker creates a beneficiary account with a PIN, consent, and a recovery kit', async () => {
    const { page } = worker;
    await page.click('#create-beneficiary');
    await page.waitForSelector('h1:text("New account for a person")');
    await check(page, '06-create-beneficiary');
    await page.fill('#handle', PERSON.handle);
    await page.check('#kind-pin');
    await page.waitForSelector('label[for="secret"]:text("Their PIN")');
    assert.equal(await page.getAttribute('#secret', 'inputmode'), 'numeric');
    await page.fill('#secret', '1234');
    assert.equal(await text(page, '#strength-value'), 'too short');
    await page.fill('#secret', '123456');
    assert.equal(await text(page, '#strength-value'), 'too easy to guess (like 123456 or 111111)');
    await page.fill('#secret', PERSON.pin);
    assert.equal(await text(page, '#strength-value'), 'OK');
    await page.fill('#confirm-secret', PERSON.pin);
    // Without consent: refused in plain words, everything kept.
    await page.click('#create-submit');
    await page.waitForSelector('#form-error:text("The person must agree first")');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'consent');
    assert.equal(await page.inputValue('#secret'), PERSON.pin);
    await check(page, '07-create-beneficiary-filled');
    await page.check('#consent');
    await page.click('#create-submit');
    await page.waitForSelector('h1:text("Recovery kit")', WAIT);
    const code = (await text(page, '#recovery-code')).trim();
    assert.match(code, /^[A-Z0-9]{4}(-[A-Z0-9]{4}){7}$/);
    await page.waitForSelector('#recovery-qr svg[role="img"]');
    await check(page, '08-recovery-kit');
    await page.evaluate(() => {
      window.print = () => (window.printed = true);
    });
    await page.click('#print');
    assert.equal(await page.evaluate(() => window.printed), true);
    await page.click('#kit-done');
    await page.waitForSelector(`h1:text("Hello ${WORKER.handle}")`);
  });

  it('story 3: the beneficiary logs in on another device, sees an empty vault, logs out', async () => {
    person = await newContext(browser, url, 'en-US');
    const { page, context } = person;
    const auth = [];
    page.on('request', (r) => r.headers().authorization && auth.push(r.headers().authorization));
    await page.goto(`${url}/`);
    await page.waitForSelector('h1:text("Open my vault")', WAIT);

    // Wrong PIN: plain words, the handle stays typed.
    await page.fill('#handle', PERSON.handle);
    await page.fill('#passphrase', '999999');
    await page.click('#login-submit');
    await page.waitForSelector('#form-error:text("This name or this passphrase is not right")', WAIT);
    assert.equal(await page.inputValue('#handle'), PERSON.handle);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'passphrase');
    await check(page, '09-login-wrong-passphrase');

    // Network down: plain words, nothing lost.
    await page.fill('#passphrase', PERSON.pin);
    await context.setOffline(true);
    await page.click('#login-submit');
    await page.waitForSelector('#form-error:text("No connection to Coffre")', WAIT);
    assert.equal(await page.inputValue('#handle'), PERSON.handle);
    assert.equal(await page.inputValue('#passphrase'), PERSON.pin);
    await context.setOffline(false);
    await check(page, '10-login-offline');

    await page.click('#login-submit');
    await page.waitForSelector('#vault-empty', WAIT);
    assert.equal(await text(page, '#vault-empty'), 'Your vault is empty. Add a photo or a file of your papers.');
    assert.equal(await page.locator('button.doc').count(), 0);
    await check(page, '11-vault-empty');

    // Log out: the session is revoked on the server and the page forgets it.
    const token = auth.at(-1);
    assert.ok(token?.startsWith('Bearer '));
    assert.equal((await fetch(`${url}/v1/me`, { headers: { authorization: token } })).status, 200);
    await page.click('#logout');
    await page.waitForSelector('#notice:text("You are logged out")');
    assert.equal(await page.locator('#logout').count(), 0);
    assert.equal((await fetch(`${url}/v1/me`, { headers: { authorization: token } })).status, 401);
  });

  it('stories 4 and 5: upload encrypted in the page, list by category, download the original', async () => {
    const { page } = person;
    await page.fill('#handle', PERSON.handle);
    await page.fill('#passphrase', PERSON.pin);
    await page.click('#login-submit');
    await page.waitForSelector('#vault-empty', WAIT);
    for (const [i, f] of FILES.entries()) {
      await page.click('#add-document');
      await page.waitForSelector('h1:text("Add a paper")');
      if (i === 0) {
        // No file: plain words.
        await page.click('#upload-submit');
        await page.waitForSelector('#form-error:text("Choose a photo or a file first")');
        await check(page, '12-upload');
      }
      await page.setInputFiles('#file', { name: f.file, mimeType: f.mimeType, buffer: f.buffer });
      await page.fill('#doc-name', f.name);
      await page.check(`#category-${f.category}`);
      await page.click('#upload-submit');
      await page.waitForSelector('#notice:text("Saved. Only you can open it.")', WAIT);
      await page.waitForSelector(`button.doc:text("${f.name}")`, WAIT);
    }
    assert.equal(await text(page, '#cat-identity'), 'Identity');
    assert.equal(await text(page, '#cat-housing'), 'Housing');
    assert.equal(await page.locator('section:has(#cat-identity) button.doc').innerText(), FILES[0].name);
    assert.equal(await page.locator('section:has(#cat-housing) button.doc').innerText(), FILES[1].name);
    await check(page, '13-vault-list');

    for (const f of FILES) {
      const [download] = await Promise.all([
        page.waitForEvent('download', WAIT),
        page.click(`button.doc:text("${f.name}")`),
      ]);
      assert.equal(download.suggestedFilename(), f.name + f.file.slice(f.file.lastIndexOf('.')));
      assert.ok(readFileSync(await download.path()).equals(f.buffer), `downloaded bytes of ${f.name}`);
    }
    // Same vault after logging in again: the list comes from the server, decrypted here.
    await page.click('#logout');
    await page.fill('#handle', PERSON.handle);
    await page.fill('#passphrase', PERSON.pin);
    await page.click('#login-submit');
    await page.waitForSelector(`button.doc:text("${FILES[1].name}")`, WAIT);
    assert.equal(await page.locator('button.doc').count(), 2);
  });

  it('leaves a store that passes the audit and holds no canary in clear', async () => {
    assert.deepEqual(pageErrors.map(String), [], 'uncaught errors in the pages');
    await worker?.context.close();
    await person?.context.close();
    server.kill('SIGTERM');
    const code = await new Promise((r) => server.once('exit', (c, s) => r(c ?? s)));
    assert.equal(code, 0, 'coffre-server stops cleanly on SIGTERM');
    const data = join(dir, 'data');
    const audit = spawnSync(SERVER, ['audit', '--data', data], { encoding: 'utf8' });
    assert.equal(audit.status, 0, `audit failed:\n${audit.stdout}${audit.stderr}`);
    const needles = FILES.flatMap((f) => [f.buffer.subarray(0, 22), Buffer.from(f.name), Buffer.from(f.file)]);
    const walk = (d) => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
    for (const file of walk(data)) {
      const bytes = readFileSync(file);
      for (const n of needles) assert.equal(bytes.indexOf(n), -1, `${file} holds "${n.toString().slice(0, 30)}" in clear`);
    }
  });
});
