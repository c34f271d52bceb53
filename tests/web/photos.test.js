// Photos of papers made small in the browser before encryption (issue 14, part 1), in
// Chromium against the real coffre-server on loopback, under the server's
// Content-Security-Policy (this context does not bypass it). The photos are made by the
// test: a 12-megapixel "ID card" drawn on a canvas with text and sensor-like noise,
// encoded as JPEG by Chromium, with an EXIF segment the test writes by hand (a description
// and a GPS latitude reference holding a canary). Checked on what the person downloads back
// (the server holds only ciphertext, checked by the other tests): the prepared photo is a
// JPEG of 2,000 × 1,500 px, ≤ 400 KB, with no EXIF and no canary, and close to the
// original drawn at that size (mean difference per channel); "send as it is" sends the
// very bytes chosen; two photos become one two-page PDF with no dates or producer; a page
// that is not a photo is refused in plain words. Screenshots: tests/web/screenshots/photos/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PDFDocument } from 'pdf-lib';
import {
  ROOT, SERVER, SHOTS, WAIT, VIEWPORTS, admin, pageErrors, login, download, registerWorker, startServer, stopServer, launchChromium, createBeneficiary,
  photoOfPaper as photo, EXIF_CANARY as CANARY,
} from './harness.js';

const DIR = join(SHOTS, 'photos');
const WORKER = { handle: 'yanis.sud', passphrase: 'la riviere coule sous le pont' };
const PERSON = { handle: 'samir.b', pin: '604182' };
/**
 * Compares `prepared` (downloaded bytes) with `original` drawn by Chromium at the same
 * size: { width, height, meanDiff } (mean absolute difference per channel, 0–255).
 */
function compare(page, original, prepared) {
  return page.evaluate(async ({ a, b }) => {
    const bytes = (s) => Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0));
    const got = await createImageBitmap(new Blob([bytes(b)], { type: 'image/jpeg' }));
    const src = await createImageBitmap(new Blob([bytes(a)], { type: 'image/jpeg' }));
    const draw = (bm) => {
      const c = new OffscreenCanvas(got.width, got.height);
      const g = c.getContext('2d');
      g.imageSmoothingQuality = 'high';
      g.drawImage(bm, 0, 0, got.width, got.height);
      return g.getImageData(0, 0, got.width, got.height).data;
    };
    const p = draw(got);
    const q = draw(src);
    let sum = 0;
    let n = 0;
    for (let i = 0; i < p.length; i += 4) {
      for (let k = 0; k < 3; k++) sum += Math.abs(p[i + k] - q[i + k]);
      n += 3;
    }
    return { width: got.width, height: got.height, meanDiff: sum / n };
  }, { a: original.toString('base64'), b: prepared.toString('base64') });
}

describe('photos made small before encryption', () => {
  let dir;
  let server;
  let url;
  let browser;
  let page;

  before(async () => {
    assert.ok(existsSync(SERVER), `build it first (${SERVER})`);
    assert.ok(existsSync(join(ROOT, 'pkg', 'gen', 'coffre_wasm_bg.wasm')), 'pkg/gen is missing: run cargo xtask test');
    rmSync(DIR, { recursive: true, force: true });
    mkdirSync(DIR, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'coffre-web-photos-'));
    const data = join(dir, 'data');
    const org = admin('org', 'create', 'Relais Sud', '--data', data);
    const invite = admin('invite', 'create', '--org', org, '--data', data);
    ({ server, url } = await startServer(dir, data));
    browser = await launchChromium();
    const worker = await registerWorker(browser, url, invite, WORKER);
    const w = worker.page;
    await createBeneficiary(w, PERSON);
    await worker.context.close();
    // The person's phone, under the server's Content-Security-Policy.
    const context = await browser.newContext({ locale: 'en-US', viewport: VIEWPORTS[0], acceptDownloads: true });
    await context.route('**/*', (route) => (route.request().url().startsWith(`${url}/`) ? route.continue() : route.abort()));
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e));
    page.on('console', (m) => m.type() === 'error' && /Content.Security.Policy/i.test(m.text()) && pageErrors.push(new Error(m.text())));
    await page.goto(`${url}/`);
    await login(page, PERSON, PERSON.pin, 'h1:text("My papers")');
  });

  after(async () => {
    await browser?.close();
    await stopServer(server);
    if (dir) rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(pageErrors.map(String), [], 'uncaught errors in the pages');
  });

  /** Opens the paper named `name` and downloads it; back to the vault after. */
  async function fetchBack(name) {
    await page.click(`button.doc:has-text("${name}")`);
    const got = await download(page, '#download');
    await page.click('#back');
    await page.waitForSelector('h1:text("My papers")');
    return got;
  }

  it('a 12-megapixel photo becomes a JPEG of 2,000 px, ≤ 400 KB, without EXIF, and stays readable', async () => {
    const original = await photo(page, 7, 'MARTIN');
    assert.ok(original.length > 2_000_000, `the test photo weighs what a camera's does (${original.length} B)`);
    assert.ok(original.includes(Buffer.from(CANARY)) && original.includes(Buffer.from('Exif\0\0', 'latin1')));
    await page.click('#add-document');
    await page.setInputFiles('#camera', { name: 'IMG_20261202_101500.jpg', mimeType: 'image/jpeg', buffer: original });
    await page.waitForSelector('#photo-choices:not([hidden])');
    await page.fill('#doc-name', 'Carte identite Samir');
    await page.click('#upload-submit');
    await page.waitForSelector('#notice:text("Saved. Only you can open it.")', WAIT);
    const { name, bytes } = await fetchBack('Carte identite Samir');
    assert.match(name, /\.jpg$/);
    assert.deepEqual([...bytes.subarray(0, 3)], [0xff, 0xd8, 0xff], 'a JPEG');
    assert.ok(bytes.length <= 300_000, `${bytes.length} B (the aim; the issue asks ≤ 400 KB)`);
    assert.ok(!bytes.includes(Buffer.from('Exif', 'latin1')), 'no EXIF segment');
    assert.ok(!bytes.includes(Buffer.from(CANARY)), 'nothing of the camera’s text');
    const seen = await compare(page, original, bytes);
    assert.deepEqual([seen.width, seen.height], [2000, 1500]);
    assert.ok(seen.meanDiff < 6, `close to the original at that size (mean difference ${seen.meanDiff.toFixed(2)} / 255)`);
    console.log(`12 MP photo: ${original.length} B → ${bytes.length} B, ${seen.width}×${seen.height}, mean difference ${seen.meanDiff.toFixed(2)}/255`);
  });

  it('"send the photo as it is" sends the very bytes chosen', async () => {
    const original = await photo(page, 11, 'DUPONT');
    await page.click('#add-document');
    await page.setInputFiles('#camera', { name: 'carte.jpg', mimeType: 'image/jpeg', buffer: original });
    await page.waitForSelector('#keep-original-choice:not([hidden])');
    await page.check('#keep-original');
    await page.fill('#doc-name', 'Carte originale');
    await page.click('#upload-submit');
    await page.waitForSelector('#notice:text("Saved. Only you can open it.")', WAIT);
    const { bytes } = await fetchBack('Carte originale');
    assert.ok(bytes.equals(original), 'the original, byte for byte');
  });

  it('two photos of one paper become one PDF of two pages; a page that is not a photo is refused', async () => {
    const front = await photo(page, 21, 'RECTO');
    const back = await photo(page, 22, 'VERSO');
    await page.click('#add-document');
    await page.setInputFiles('#camera', { name: 'IMG_1.jpg', mimeType: 'image/jpeg', buffer: front });
    await page.waitForSelector('#photo-choices:not([hidden])');
    // A PDF is not a page: plain words, the first photo stays chosen.
    await page.setInputFiles('#page', { name: 'x.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4 x') });
    await page.waitForSelector('#form-error:text("A page must be a photo")', WAIT);
    assert.equal(await page.textContent('#pages-chosen'), '');
    await page.setInputFiles('#page', { name: 'IMG_2.jpg', mimeType: 'image/jpeg', buffer: back });
    await page.waitForSelector('#pages-chosen:text("2 photos")');
    assert.equal(await page.isHidden('#keep-original-choice'), true, 'several pages are always made small');
    await page.fill('#doc-name', 'Titre de sejour');
    for (const vp of VIEWPORTS) {
      await page.setViewportSize(vp);
      await page.screenshot({ path: join(DIR, `two-pages-${vp.width}.png`), fullPage: true });
    }
    await page.setViewportSize(VIEWPORTS[0]);
    await page.click('#upload-submit');
    await page.waitForSelector('#notice:text("Saved. Only you can open it.")', WAIT);
    await page.click('button.doc:has-text("Titre de sejour")');
    await page.click('#view');
    await page.waitForSelector('iframe#preview-pdf[title="Titre de sejour"]', WAIT).catch(async (e) => {
      throw new Error(`${e.message}\nthe page shows: ${(await page.locator('main').innerText()).slice(0, 600)}`);
    });
    const { name, bytes } = await download(page, '#download');
    await page.click('#back');
    assert.match(name, /\.pdf$/);
    const text = bytes.toString('latin1');
    assert.ok(text.startsWith('%PDF-'));
    assert.equal(text.match(/\/Type \/Page(?![a-zA-Z])/g)?.length, 2, 'two pages');
    const pdf = await PDFDocument.load(bytes, { updateMetadata: false });
    assert.equal(pdf.getPageCount(), 2, 'pdf-lib reads two pages back');
    assert.deepEqual(pdf.getPages().map((p) => p.getSize()).map(({ width, height }) => [Math.round(width), Math.round(height)]), [[960, 720], [960, 720]]);
    assert.equal((text.match(/\/DCTDecode/g) ?? []).length, 2, 'each page a JPEG');
    for (const leak of ['/CreationDate', '/ModDate', '/Producer', 'Exif', CANARY]) assert.ok(!text.includes(leak), `no ${leak}`);
    assert.ok(bytes.length <= 800_000, `${bytes.length} B for two pages`);
    console.log(`two 12 MP photos (${front.length + back.length} B) → one PDF of ${bytes.length} B`);
  });
});
