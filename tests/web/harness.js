// What both web test files share: the server binary, a free port, a context limited to
// the test server, and the per-screen check (axe, then both screenshot sizes).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { appendFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { crc32, deflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(HERE, '..', '..');
export const SERVER = process.env.COFFRE_SERVER_BIN ?? join(ROOT, 'target', 'release', 'coffre-server');
export const SHOTS = join(HERE, 'screenshots');
export const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
export const VIEWPORTS = [
  { width: 360, height: 740 },
  { width: 1280, height: 800 },
];
export const WAIT = { timeout: 60_000 };

export function admin(...args) {
  const r = spawnSync(SERVER, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `coffre-server ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function waitHealthy(url, child) {
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

/**
 * A browser context that may only talk to the test server. It bypasses the server's
 * Content-Security-Policy, because `check` injects axe-core as an inline script, which the
 * policy forbids; proxy.test.js runs the main flows under the policy, without axe.
 */
export async function newContext(browser, url, locale, shots = SHOTS) {
  const context = await browser.newContext({ locale, viewport: VIEWPORTS[0], acceptDownloads: true, bypassCSP: true });
  await context.route('**/*', (route) =>
    route.request().url().startsWith(`${url}/`) ? route.continue() : route.abort(),
  );
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e));
  return { context, page };
}
export const pageErrors = [];

/** axe-core on the current screen (0 serious/critical), then both screenshot sizes. */
export async function check(page, name, shots = SHOTS) {
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
    await page.screenshot({ path: join(shots, `${name}-${vp.width}.png`), fullPage: true });
  }
  await page.setViewportSize(VIEWPORTS[0]);
  // Usable at 360 px: nothing wider than the screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `screen "${name}" is ${overflow}px wider than 360px`);
}

export const text = (page, selector) => page.locator(selector).innerText();

/** Logs in on the login screen and waits for `ready`. */
export async function login(page, who, secret, ready) {
  await page.fill('#handle', who.handle);
  await page.fill('#passphrase', secret);
  await page.click('#login-submit');
  await page.waitForSelector(ready, WAIT);
}

/** Clicks `selector` and returns the bytes of the download it starts. */
export async function download(page, selector) {
  const [d] = await Promise.all([page.waitForEvent('download', WAIT), page.click(selector)]);
  return { name: d.suggestedFilename(), bytes: readFileSync(await d.path()) };
}

/** The bearer token of the page's last API request. */
export function tokenOf(page) {
  const seen = [];
  page.on('request', (r) => r.headers().authorization && seen.push(r.headers().authorization));
  return () => seen.at(-1);
}


/** `coffre-server serve` on a free loopback port over `data`, serving web/ and pkg/. */
export async function startServer(dir, data, extraArgs = []) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = spawn(
    SERVER,
    ['serve', '--listen', `127.0.0.1:${port}`, '--data', data, '--server-key', join(dir, 'server.key'),
      '--web', join(ROOT, 'web'), '--pkg', join(ROOT, 'pkg'), ...extraArgs],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' } },
  );
  // COFFRE_SERVER_LOG=file keeps the server's log, to see why a run failed.
  const log = process.env.COFFRE_SERVER_LOG;
  server.stderr.on('data', (chunk) => log && appendFileSync(log, chunk));
  await waitHealthy(url, server);
  return { server, url };
}

/** Stops a server started by startServer and waits for it to exit. */
export async function stopServer(server) {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
}

/** Debian's Chromium, headless, with the flags this machine needs. */
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', ...extraArgs],
  });
}

/** A real PNG (so the page can show it) carrying `text` in a tEXt chunk and `pad` bytes. */
export function png(text, pad) {
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const [w, h] = [64, 48];
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) rows.set([x * 4, y * 5, 160], y * (w * 3 + 1) + 1 + x * 3);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('tEXt', Buffer.concat([Buffer.from(`Comment\0${text} `), Buffer.alloc(pad, 0x41)])),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A new browser context where worker `w` registers with `invite` and logs in (English). */
export async function registerWorker(browser, url, invite, w) {
  const ctx = await newContext(browser, url, 'en-US');
  const { page } = ctx;
  await page.goto(`${url}/`);
  await page.click('#to-worker-register');
  await page.fill('#invite', invite);
  await page.fill('#handle', w.handle);
  await page.fill('#new-passphrase', w.passphrase);
  await page.fill('#confirm-passphrase', w.passphrase);
  await page.click('#worker-register-submit');
  await page.waitForSelector('#notice:text("Your account is ready")', WAIT);
  await page.fill('#passphrase', w.passphrase);
  await page.click('#login-submit');
  await page.waitForSelector(`h1:text("Hello ${w.handle}")`, WAIT);
  return ctx;
}

/** A worker's page creates the account of `person` ({ handle, pin }) with a PIN and the
 * person's consent, and waits for the recovery kit. */
export async function createBeneficiary(page, person) {
  await page.click('#create-beneficiary');
  await page.waitForSelector('h1:text("New account for a person")');
  await page.fill('#handle', person.handle);
  await page.check('#kind-pin');
  await page.fill('#secret', person.pin);
  await page.fill('#confirm-secret', person.pin);
  await page.check('#consent');
  await page.click('#create-submit');
  await page.waitForSelector('h1:text("Recovery kit")', WAIT);
}

/** What the test photos' EXIF segment says (a description), never to be seen after preparing. */
export const EXIF_CANARY = 'CANARY-EXIF-GPS-48N';

/** An APP1 EXIF segment: IFD0 with ImageDescription = CANARY and a GPS IFD (latitude ref). */
function exif() {
  const desc = Buffer.from(`${EXIF_CANARY}\0`);
  const tiff = Buffer.alloc(8 + 2 + 2 * 12 + 4 + 2 + 12 + 4 + desc.length);
  tiff.write('II*\0', 0, 'latin1');
  tiff.writeUInt32LE(8, 4);
  let o = 8;
  const gpsAt = 8 + 2 + 2 * 12 + 4;
  const descAt = gpsAt + 2 + 12 + 4;
  tiff.writeUInt16LE(2, o); o += 2;
  // 0x010E ImageDescription, ASCII, its bytes at descAt.
  tiff.writeUInt16LE(0x010e, o); tiff.writeUInt16LE(2, o + 2); tiff.writeUInt32LE(desc.length, o + 4); tiff.writeUInt32LE(descAt, o + 8); o += 12;
  // 0x8825 GPSInfo, LONG, the GPS IFD's offset.
  tiff.writeUInt16LE(0x8825, o); tiff.writeUInt16LE(4, o + 2); tiff.writeUInt32LE(1, o + 4); tiff.writeUInt32LE(gpsAt, o + 8); o += 12;
  tiff.writeUInt32LE(0, o); o += 4;
  // GPS IFD: 0x0001 GPSLatitudeRef, ASCII "N\0" in the entry itself.
  tiff.writeUInt16LE(1, o); o += 2;
  tiff.writeUInt16LE(0x0001, o); tiff.writeUInt16LE(2, o + 2); tiff.writeUInt32LE(2, o + 4); tiff.write('N\0', o + 8, 'latin1'); o += 12;
  tiff.writeUInt32LE(0, o); o += 4;
  desc.copy(tiff, o);
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length + 2);
  return Buffer.concat([Buffer.from([0xff, 0xe1]), len, body]);
}

/** `jpeg` with the EXIF segment after its JFIF APP0 segment. */
function withExif(jpeg) {
  assert.deepEqual([...jpeg.subarray(0, 4)], [0xff, 0xd8, 0xff, 0xe0]);
  const app0End = 4 + jpeg.readUInt16BE(4);
  return Buffer.concat([jpeg.subarray(0, app0End), exif(), jpeg.subarray(app0End)]);
}

/** A 4,000 × 3,000 photo of an "ID card" (text, lines, a face-like disc, noise), as JPEG 0.92. */
export async function photoOfPaper(page, seed, label) {
  const b64 = await page.evaluate(async ({ seed, label }) => {
    const [w, h] = [4000, 3000];
    const c = new OffscreenCanvas(w, h);
    const g = c.getContext('2d');
    const bg = g.createLinearGradient(0, 0, w, h);
    bg.addColorStop(0, '#7a6a55');
    bg.addColorStop(1, '#3c342a');
    g.fillStyle = bg;
    g.fillRect(0, 0, w, h);
    g.save();
    g.translate(w / 2, h / 2);
    g.rotate(-0.04);
    g.fillStyle = '#e9f0f4';
    g.fillRect(-1700, -1080, 3400, 2160);
    g.fillStyle = '#b8c9d6';
    g.beginPath();
    g.arc(-1100, 0, 520, 0, 2 * Math.PI);
    g.fill();
    g.fillStyle = '#1b2a38';
    g.font = 'bold 150px sans-serif';
    g.fillText('REPUBLIQUE FRANCAISE', -450, -760);
    g.font = '120px sans-serif';
    const lines = [`NOM : ${label}`, 'PRENOM : EXEMPLE', 'NE LE : 01.02.1990', 'A : LYON (69)', `N° ${seed}X7K2P9Q4`];
    lines.forEach((l, i) => g.fillText(l, -450, -420 + i * 230));
    for (let i = 0; i < 40; i++) g.fillRect(-1600 + i * 80, 860, 40 + (i % 3) * 10, 120);
    g.restore();
    // Sensor-like noise, so the JPEG weighs what a camera's does.
    const img = g.getImageData(0, 0, w, h);
    let x = seed;
    for (let i = 0; i < img.data.length; i += 4) {
      x = (x * 1103515245 + 12345) >>> 0;
      const n = ((x >>> 24) % 25) - 12;
      img.data[i] += n;
      img.data[i + 1] += n;
      img.data[i + 2] += n;
    }
    g.putImageData(img, 0, 0);
    const blob = await c.convertToBlob({ type: 'image/jpeg', quality: 0.92 });
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }, { seed, label });
  return withExif(Buffer.from(b64, 'base64'));
}
