// Safety checks in Chromium, against the real coffre-server on loopback: the fingerprint
// as emoji named in fr, en and ar, the words from the French BIP-39 list, and scanning
// the other person's QR with the camera. The camera is Chromium's fake one, playing a
// YUV4MPEG2 file written here from the QR of the worker's real fingerprint (or from a
// code one digit off); each file needs its own browser, launched with the fake-camera
// flags. Screenshots in tests/web/screenshots/safety/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HERE, ROOT, SERVER, SHOTS, WAIT, admin, newContext, pageErrors, check, text, login, startServer, stopServer, launchChromium, png } from './harness.js';
import encodeQR from 'qr';
import { wordlist as FRENCH } from '@scure/bip39/wordlists/french.js';
import { wordlist as ENGLISH } from '@scure/bip39/wordlists/english.js';

const DIR = join(SHOTS, 'safety');
const WORKER = { handle: 'sofia.relais', passphrase: 'le train passe sous le pont' };
const PERSON = { handle: 'karim.b', passphrase: 'mes papiers sont a l abri' };
const PAPER = 'Recepisse prefecture';

/**
 * A raw YUV4MPEG2 video (4:2:0, 640×480, a few identical frames) showing `text` as a QR
 * code, black on white, centred, with a quiet zone: what the fake camera films.
 */
function qrVideo(path, text) {
  const [W, H] = [640, 480];
  const modules = encodeQR(text, 'raw', { ecc: 'medium' });
  const n = modules.length;
  const scale = Math.floor(H / (n + 8));
  const x0 = Math.floor((W - n * scale) / 2);
  const y0 = Math.floor((H - n * scale) / 2);
  const luma = Buffer.alloc(W * H, 235);
  for (let y = 0; y < n * scale; y++) {
    for (let x = 0; x < n * scale; x++) {
      if (modules[Math.floor(y / scale)][Math.floor(x / scale)]) luma[(y0 + y) * W + x0 + x] = 16;
    }
  }
  const chroma = Buffer.alloc((W / 2) * (H / 2) * 2, 128);
  const frame = Buffer.concat([Buffer.from('FRAME\n'), luma, chroma]);
  const header = Buffer.from(`YUV4MPEG2 W${W} H${H} F10:1 Ip A1:1 C420mpeg2\n`);
  writeFileSync(path, Buffer.concat([header, ...Array(5).fill(frame)]));
}

/** Chromium with a fake camera playing `y4m`; `grant` says yes to the camera prompt. */
const cameraBrowser = (y4m, grant = true) => launchChromium([
  '--use-fake-device-for-media-stream',
  ...(grant ? ['--use-fake-ui-for-media-stream'] : ['--deny-permission-prompts']),
  `--use-file-for-fake-video-capture=${y4m}`,
]);

/** What a fingerprint box shows, once its names and words have loaded. */
async function shown(page, id) {
  await page.waitForSelector(`#${id}[data-ready="true"]`, WAIT);
  return page.evaluate((sel) => {
    const box = document.getElementById(sel);
    return {
      glyphs: [...box.querySelectorAll('.emoji .glyph')].map((e) => e.textContent),
      names: [...box.querySelectorAll('.emoji .name')].map((e) => e.textContent),
      words: [...box.querySelectorAll('.words li')].map((e) => e.textContent),
      wordsLang: box.querySelector('.words').lang,
      labels: [...box.querySelectorAll('.fp-label')].map((e) => e.textContent),
      number: box.querySelector('.number').textContent,
    };
  }, id);
}

async function setLang(page, lang) {
  await page.click(`button[lang="${lang}"]`);
  await page.waitForFunction((l) => document.documentElement.lang === l, lang);
}

describe('safety checks', () => {
  let dir;
  let server;
  let url;
  let browser;
  let worker;
  let names;
  let strings;
  let mine;

  before(async () => {
    assert.ok(existsSync(SERVER), `build it first (${SERVER})`);
    assert.ok(existsSync(join(ROOT, 'pkg', 'gen', 'coffre_wasm_bg.wasm')), 'pkg/gen is missing: run cargo xtask test');
    rmSync(DIR, { recursive: true, force: true });
    mkdirSync(DIR, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'coffre-web-safety-'));
    const data = join(dir, 'data');
    const org = admin('org', 'create', 'Relais Test', '--data', data);
    const invite = admin('invite', 'create', '--org', org, '--data', data);
    ({ server, url } = await startServer(dir, data));
    browser = await launchChromium();
    names = await import(pathToFileURL(join(ROOT, 'web/sas-emoji.js')));
    strings = (await import(pathToFileURL(join(ROOT, 'web/i18n/safety.js')))).default;

    // A worker (in French), who creates the person's account.
    worker = await newContext(browser, url, 'fr-FR');
    const { page } = worker;
    await page.goto(`${url}/`);
    await page.click('#to-worker-register');
    await page.fill('#invite', invite);
    await page.fill('#handle', WORKER.handle);
    await page.fill('#new-passphrase', WORKER.passphrase);
    await page.fill('#confirm-passphrase', WORKER.passphrase);
    await page.click('#worker-register-submit');
    await page.waitForSelector('#notice', WAIT);
    await page.fill('#passphrase', WORKER.passphrase);
    await page.click('#login-submit');
    await page.waitForSelector('#create-beneficiary', WAIT);
    await page.click('#create-beneficiary');
    await page.fill('#handle', PERSON.handle);
    await page.check('#kind-passphrase');
    await page.fill('#secret', PERSON.passphrase);
    await page.fill('#confirm-secret', PERSON.passphrase);
    await page.check('#consent');
    await page.click('#create-submit');
    await page.waitForSelector('#kit-done', WAIT);
    await page.click('#kit-done');
    await page.waitForSelector('#my-fingerprint', WAIT);
  });

  after(async () => {
    await browser?.close();
    await stopServer(server);
    if (dir) rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(pageErrors.map(String), [], 'uncaught errors in the pages');
  });

  it('shows the emoji named in fr, en and ar, and the words of the French BIP-39 list', async () => {
    const { page } = worker;
    assert.equal(names.EMOJI.length, 64);
    for (const l of ['en', 'fr', 'ar']) {
      assert.equal(names.default[l].length, 64, `64 names in ${l}`);
      assert.ok(names.default[l].every((n) => typeof n === 'string' && n.length > 0), `no empty name in ${l}`);
    }
    // The vendored French list is the package's, and every list has 2048 words.
    assert.ok(readFileSync(join(ROOT, 'web/vendor/bip39-french.js')).equals(readFileSync(join(HERE, 'node_modules/@scure/bip39/wordlists/french.js'))));
    assert.equal(FRENCH.length, 2048);

    const fr = await shown(page, 'my-fingerprint');
    await check(page, 'worker-home-fr', DIR);
    await setLang(page, 'en');
    const en = await shown(page, 'my-fingerprint');
    await check(page, 'worker-home-en', DIR);
    await setLang(page, 'ar');
    const ar = await shown(page, 'my-fingerprint');
    await check(page, 'worker-home-ar', DIR);
    mine = en;

    // Eleven emoji from the SAS table, the same pictures in every language, each named
    // in the language of the screen.
    assert.equal(en.glyphs.length, 11);
    assert.deepEqual(fr.glyphs, en.glyphs);
    assert.deepEqual(ar.glyphs, en.glyphs);
    const indices = en.glyphs.map((g) => names.EMOJI.indexOf(g));
    assert.ok(indices.every((i) => i >= 0), `emoji from the table: ${en.glyphs}`);
    assert.deepEqual(en.names, indices.map((i) => names.default.en[i]));
    assert.deepEqual(fr.names, indices.map((i) => names.default.fr[i]));
    assert.deepEqual(ar.names, indices.map((i) => names.default.ar[i]));
    assert.notDeepEqual(fr.names, en.names, 'French names, not English ones');
    console.log(`emoji: ${en.glyphs.join(' ')} | ${fr.names.join(', ')} | ${ar.names.join('، ')}`);

    // English words in English; French words from the French list, at the same indices.
    assert.equal(en.wordsLang, 'en');
    assert.equal(fr.wordsLang, 'fr');
    assert.equal(fr.words.length, 6);
    const frIndices = fr.words.map((w) => FRENCH.indexOf(w));
    assert.ok(frIndices.every((i) => i >= 0), `French BIP-39 words: ${fr.words}`);
    assert.deepEqual(frIndices, en.words.map((w) => ENGLISH.indexOf(w)), 'the same indices as the English words');
    console.log(`words: ${en.words.join(' ')} | ${fr.words.join(' ')}`);
    // Arabic has no BIP-39 list: the English words, marked as English, and said so.
    assert.deepEqual(ar.words, en.words);
    assert.equal(ar.wordsLang, 'en');
    assert.equal(ar.labels[1], strings.ar.fpWordsEnglish);
    assert.equal(fr.labels[1], strings.fr.fpWords);
    assert.deepEqual(fr.labels, [strings.fr.fpPictures, strings.fr.fpWords, strings.fr.fpNumber]);
    // The number is the same everywhere.
    assert.equal(fr.number, en.number);
    assert.equal(ar.number, en.number);
    assert.match(en.number, /^\d{5}( \d{5}){4}$/);
    await setLang(page, 'en');
  });

  /** The person, in `b`, with a paper open on the share screen and the worker found. */
  async function shareScreen(b, lang = 'en-US') {
    const ctx = await newContext(b, url, lang);
    const { page } = ctx;
    await page.goto(`${url}/`);
    await page.waitForSelector('#login-submit', WAIT);
    await login(page, PERSON, PERSON.passphrase, '#add-document');
    if (!(await page.locator(`button.doc:has-text("${PAPER}")`).count())) {
      await page.click('#add-document');
      await page.setInputFiles('#camera', { name: 'recepisse.png', mimeType: 'image/png', buffer: png('CANARY-SAFETY-0a9d', 2_000) });
      await page.fill('#doc-name', PAPER);
      await page.check('#category-identity');
      await page.click('#upload-submit');
      await page.waitForSelector(`button.doc:has-text("${PAPER}")`, WAIT);
    }
    await page.click(`button.doc:has-text("${PAPER}")`);
    await page.waitForSelector('#share', WAIT);
    await page.click('#share');
    await page.fill('#handle', WORKER.handle);
    await page.click('#find-worker');
    await page.waitForSelector('#their-fingerprint[data-ready="true"]', WAIT);
    return ctx;
  }

  it("scans the worker's code with the camera: the codes match, and sharing goes on", async () => {
    const y4m = join(dir, 'match.y4m');
    qrVideo(y4m, `coffre-fingerprint:${mine.number.replace(/ /g, '')}`);
    const b = await cameraBrowser(y4m);
    try {
      const { page } = await shareScreen(b);
      assert.equal(await text(page, '#their-fingerprint-scan'), strings.en.scanTheirCode);
      await page.click('#their-fingerprint-scan');
      await page.waitForSelector('#their-fingerprint-scan-result.match', WAIT);
      assert.equal(await text(page, '#their-fingerprint-scan-result'), 'The codes match.');
      assert.equal(await page.getAttribute('#their-fingerprint-scan-result', 'role'), 'status');
      // The camera is off again.
      assert.equal(await page.evaluate(() => document.querySelector('#their-fingerprint video').srcObject), null);
      assert.equal(await page.isEnabled('#share-confirm'), true);
      console.log(`decoder: ${await page.getAttribute('#their-fingerprint video', 'data-decoder')}`);
      for (const l of ['fr', 'ar', 'en']) {
        // The result is gone after a language switch (the screen is rebuilt): scan again.
        await setLang(page, l);
        await page.click('#their-fingerprint-scan');
        await page.waitForSelector('#their-fingerprint-scan-result.match', WAIT);
        assert.equal(await text(page, '#their-fingerprint-scan-result'), strings[l].scanMatch);
        await check(page, `share-scan-match-${l}`, DIR);
      }
      await page.click('#share-confirm');
      await page.waitForSelector(`#notice:text("Shared with ${WORKER.handle}")`, WAIT);
    } finally {
      await b.close();
    }
  });

  it('a code that is not the expected one: "do NOT match", and the share button is off', async () => {
    // The worker's number with its last digit changed: a substituted key.
    const digits = mine.number.replace(/ /g, '');
    const wrong = digits.slice(0, -1) + String((Number(digits.at(-1)) + 1) % 10);
    const y4m = join(dir, 'mismatch.y4m');
    qrVideo(y4m, `coffre-fingerprint:${wrong}`);
    const b = await cameraBrowser(y4m);
    try {
      const { page } = await shareScreen(b);
      await page.click('#their-fingerprint-scan');
      await page.waitForSelector('#their-fingerprint-scan-result.mismatch', WAIT);
      assert.equal(await text(page, '#their-fingerprint-scan-result'), 'The codes do NOT match — do not share.');
      assert.equal(await page.getAttribute('#their-fingerprint-scan-result', 'role'), 'alert');
      assert.equal(await page.isEnabled('#share-confirm'), false);
      for (const l of ['fr', 'ar', 'en']) {
        await setLang(page, l);
        await page.click('#their-fingerprint-scan');
        await page.waitForSelector('#their-fingerprint-scan-result.mismatch', WAIT);
        assert.equal(await text(page, '#their-fingerprint-scan-result'), strings[l].scanMismatch);
        await check(page, `share-scan-mismatch-${l}`, DIR);
      }
    } finally {
      await b.close();
    }
  });

  it('a QR that is not a safety code is named and the camera keeps looking', async () => {
    const y4m = join(dir, 'other.y4m');
    qrVideo(y4m, 'https://example.org/not-a-fingerprint');
    const b = await cameraBrowser(y4m);
    try {
      const { page } = await shareScreen(b);
      await page.click('#their-fingerprint-scan');
      await page.waitForSelector(`#their-fingerprint-scan-status:text("${strings.en.scanNotOurs}")`, WAIT);
      assert.equal(await page.isVisible('#their-fingerprint-scan-stop'), true);
      await page.click('#their-fingerprint-scan-stop');
      assert.equal(await page.isVisible('#their-fingerprint-scan'), true);
      assert.equal(await page.evaluate(() => document.querySelector('#their-fingerprint video').srcObject), null);
    } finally {
      await b.close();
    }
  });

  it('camera refused, or no camera: plain words, and the pictures and words stay', async () => {
    const y4m = join(dir, 'denied.y4m');
    qrVideo(y4m, `coffre-fingerprint:${mine.number.replace(/ /g, '')}`);
    const denied = await cameraBrowser(y4m, false);
    try {
      const { page } = await shareScreen(denied);
      await page.click('#their-fingerprint-scan');
      await page.waitForSelector(`#their-fingerprint-scan-status:text("${strings.en.scanDenied}")`, WAIT);
      assert.equal(await page.locator('#their-fingerprint .emoji li').count(), 11);
      await check(page, 'share-scan-denied-en', DIR);
    } finally {
      await denied.close();
    }
    // The ordinary test browser has no camera at all.
    const { page, context } = await shareScreen(browser, 'fr-FR');
    await context.grantPermissions(['camera']);
    await page.click('#their-fingerprint-scan');
    await page.waitForSelector(`#their-fingerprint-scan-status:text("${strings.fr.scanNoCamera}")`, WAIT);
    await check(page, 'share-scan-no-camera-fr', DIR);
    await context.close();
  });
});
