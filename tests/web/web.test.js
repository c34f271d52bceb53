// End-to-end test of web/ in Debian's Chromium (playwright-core) against the real release
// coffre-server on loopback with a fresh data dir. Run: `cd tests/web && npm ci && node --test`
// (after `cargo build --release -p coffre-server --locked` and `cargo xtask test`, which
// builds pkg/gen/). Screenshots of every screen go to tests/web/screenshots/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import {
  HERE, ROOT, SERVER, SHOTS, WAIT, admin, newContext, pageErrors, check, text, login, download, tokenOf, startServer, stopServer,
  launchChromium, png,
} from './harness.js';

const WORKER = { handle: 'camille.relais', passphrase: 'le chat dort sur le toit' };
const PERSON = { handle: 'amina.k', pin: '482915', newPin: '730264', recoveredPin: '615039' };
// Canaries: must never appear in clear in the server's data dir.
const FILES = [
  {
    name: 'Carte identite Amina',
    category: 'identity',
    file: 'carte.png',
    mimeType: 'image/png',
    input: '#camera',
    buffer: png('CANARY-IDENTITY-7f3a9c', 150_000),
  },
  {
    name: 'Attestation hebergement',
    category: 'housing',
    file: 'attestation.pdf',
    mimeType: 'application/pdf',
    input: '#file',
    buffer: Buffer.from('%PDF-1.4 CANARY-HOUSING-51d2e0 attestation'),
  },
  {
    // 20 MB: encrypted in a worker, sent in 4 MiB pieces, one of them cut off and resumed.
    name: 'Dossier CAF scanne',
    category: 'income',
    file: 'dossier-caf.pdf',
    mimeType: 'application/pdf',
    input: '#file',
    buffer: Buffer.concat([Buffer.from('%PDF-1.4 CANARY-INCOME-0c77e1 '), randomBytes(20_000_000)]),
  },
];
/** The first bytes of a .docx: a ZIP whose first entry is an OOXML part. */
function docx() {
  const name = Buffer.from('[Content_Types].xml');
  const header = Buffer.alloc(30);
  header.writeUInt32LE(0x04034b50, 0);
  header.writeUInt16LE(name.length, 26);
  return Buffer.concat([header, name, Buffer.from('<Types><Override PartName="/word/document.xml"/></Types>'), Buffer.alloc(200)]);
}
// 600 KB: sent on an emulated slow link in story 5, where progress must move by bytes.
const SCRAP = { name: 'Brouillon a jeter', file: 'brouillon.pdf', mimeType: 'application/pdf', buffer: Buffer.concat([Buffer.from('%PDF-1.4 CANARY-SCRAP-9e01aa '), Buffer.alloc(600_000, 0x42)]) };

describe('web app', () => {
  let dir;
  let server;
  let url;
  let invite;
  let browser;
  let worker;
  let person;
  let recoveryCode;
  let workerToken;

  before(async () => {
    assert.ok(existsSync(SERVER), `build it first: cargo build --release -p coffre-server --locked (${SERVER})`);
    assert.ok(existsSync(join(ROOT, 'pkg', 'gen', 'coffre_wasm_bg.wasm')), 'pkg/gen is missing: run cargo xtask test');
    // This file's screenshots only: recovery.test.js keeps its own in a subfolder.
    mkdirSync(SHOTS, { recursive: true });
    for (const f of readdirSync(SHOTS)) if (f.endsWith('.png')) rmSync(join(SHOTS, f));
    dir = mkdtempSync(join(tmpdir(), 'coffre-web-'));
    const data = join(dir, 'data');
    const org = admin('org', 'create', 'Relais Test', '--data', data);
    invite = admin('invite', 'create', '--org', org, '--data', data);
    ({ server, url } = await startServer(dir, data));
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await stopServer(server);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('has every string in every language, every key the code uses, and the vendored files unchanged', async () => {
    const langs = {};
    // The first load's strings and those of the screens loaded later (i18n/more/).
    const load = async (f) => (await import(pathToFileURL(join(ROOT, f)))).default;
    for (const l of ['en', 'fr', 'ar']) langs[l] = { ...(await load(`web/i18n/${l}.js`)), ...(await load(`web/i18n/more/${l}.js`)) };
    const keys = Object.keys(langs.en).sort();
    for (const [l, strings] of Object.entries(langs)) {
      assert.deepEqual(Object.keys(strings).sort(), keys, `keys of ${l}.js`);
      for (const [k, v] of Object.entries(strings)) assert.ok(typeof v === 'string' && v.length > 0, `${l}.${k}`);
      // Placeholders are the same in every language.
      for (const k of keys) {
        const holes = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
        assert.deepEqual(holes(strings[k]), holes(langs.en[k]), `placeholders of ${l}.${k}`);
      }
    }
    assert.equal(langs.ar.dir, 'rtl');
    // Every literal key the code passes to t(), showError(), notices and problem maps exists.
    const code = ['app.js', 'ui.js', 'screens.js', 'vault.js', 'api.js', 'shared.js', 'sessions.js', 'safety.js', 'link.js', 'intake.js'].map((f) => readFileSync(join(ROOT, 'web', f), 'utf8')).join('\n');
    const used = new Set([
      ...[...code.matchAll(/\bt\('([A-Za-z_]+)'/g)].map((m) => m[1]),
      ...[...code.matchAll(/\b(?:showError|showNotice|ApiError)\('([A-Za-z_]+)'/g)].map((m) => m[1]),
      ...[...code.matchAll(/\bnotice: '([A-Za-z_]+)'/g)].map((m) => m[1]),
      ...[...code.matchAll(/'(err[A-Z][A-Za-z]+)'/g)].map((m) => m[1]),
    ]);
    assert.ok(used.size > 60, `found only ${used.size} keys in the code`);
    for (const k of used) assert.ok(k in langs.en, `the code uses "${k}", missing from the strings`);
    // The safety checks' strings (loaded later, i18n/safety.js): the same rules.
    const safety = (await import(pathToFileURL(join(ROOT, 'web/i18n/safety.js')))).default;
    const safetyKeys = Object.keys(safety.en).sort();
    assert.deepEqual(Object.keys(safety).sort(), ['ar', 'en', 'fr']);
    for (const [l, strings] of Object.entries(safety)) {
      assert.deepEqual(Object.keys(strings).sort(), safetyKeys, `keys of safety.js, ${l}`);
      for (const [k, v] of Object.entries(strings)) assert.ok(typeof v === 'string' && v.length > 0, `safety ${l}.${k}`);
      for (const k of safetyKeys) assert.ok(!(k in langs.en), `${k} is in both string files`);
    }
    const safetyCode = readFileSync(join(ROOT, 'web/safety.js'), 'utf8');
    const safetyUsed = new Set([...safetyCode.matchAll(/'((?:fp|scan)[A-Z][A-Za-z]+)'/g)].map((m) => m[1]));
    assert.ok(safetyUsed.size >= 15, `found only ${safetyUsed.size} keys in safety.js`);
    for (const k of safetyUsed) assert.ok(k in safety.en, `safety.js uses "${k}", missing from i18n/safety.js`);
    // Vendored files are the npm packages' files, byte for byte.
    for (const [ours, theirs] of [
      ['qr/index.js', 'qr/index.js'],
      ['qr/decode.js', 'qr/decode.js'],
      ['bip39-french.js', '@scure/bip39/wordlists/french.js'],
      ['pdf-lib.esm.min.js', 'pdf-lib/dist/pdf-lib.esm.min.js'],
    ]) {
      assert.ok(
        readFileSync(join(ROOT, 'web/vendor', ours)).equals(readFileSync(join(HERE, 'node_modules', theirs))),
        `web/vendor/${ours} must be the file ${theirs} of its npm package`,
      );
    }
  });

  it('story 1: a worker registers with an invite code and logs in (French first, then English, Arabic right to left)', async () => {
    worker = await newContext(browser, url, 'fr-FR');
    const { page } = worker;
    workerToken = tokenOf(page);
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

    // Switching language keeps what was typed; Arabic turns the page right to left.
    await page.fill('#handle', 'typed.before');
    await page.click('button[lang="ar"]');
    await page.waitForSelector('h1:text("افتح خزنتي")');
    assert.equal(await page.getAttribute('html', 'dir'), 'rtl');
    assert.equal(await page.inputValue('#handle'), 'typed.before');
    // Right to left for real: a label's text starts at the right edge of its input.
    const edges = () => page.evaluate(() => {
      const range = document.createRange();
      range.selectNodeContents(document.querySelector('label[for="handle"]'));
      const label = range.getBoundingClientRect();
      const input = document.getElementById('handle').getBoundingClientRect();
      return { left: label.left - input.left, right: input.right - label.right };
    });
    const rtl = await edges();
    assert.ok(rtl.right < 2 && rtl.left > 20, `label text on the right in Arabic: ${JSON.stringify(rtl)}`);
    await check(page, '02-login-ar');
    await page.click('button[lang="en"]');
    await page.waitForSelector('h1:text("Open my vault")');
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.equal(await page.getAttribute('html', 'dir'), 'ltr');
    assert.equal(await page.inputValue('#handle'), 'typed.before');
    const ltr = await edges();
    assert.ok(ltr.left < 2 && ltr.right > 20, `label text on the left in English: ${JSON.stringify(ltr)}`);
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
    await page.waitForSelector('#shared-empty', WAIT);
    await page.waitForSelector('#my-fingerprint svg[role="img"]', WAIT);
    assert.equal(await page.locator('#my-fingerprint .words li').count(), 6);
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
    recoveryCode = (await text(page, '#recovery-code')).trim();
    assert.match(recoveryCode, /^[A-Z0-9]{4}(-[A-Z0-9]{4}){7}$/);
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
    const token = tokenOf(page);
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
    const bearer = token();
    assert.ok(bearer?.startsWith('Bearer '));
    assert.equal((await fetch(`${url}/v1/me`, { headers: { authorization: bearer } })).status, 200);
    await page.click('#logout');
    await page.waitForSelector('#notice:text("You are logged out")');
    assert.equal(await page.locator('#logout').count(), 0);
    assert.equal((await fetch(`${url}/v1/me`, { headers: { authorization: bearer } })).status, 401);
  });

  it('story 4: photo or file, encrypted in a worker with a progress bar, upload resumed after a cut', async () => {
    const { page } = person;
    const personToken = tokenOf(page);
    await login(page, PERSON, PERSON.pin, '#vault-empty');
    const workers = [];
    page.on('worker', (w) => workers.push(w.url()));
    const patches = [];
    for (const [i, f] of FILES.entries()) {
      await page.click('#add-document');
      await page.waitForSelector('h1:text("Add a paper")');
      if (i === 0) {
        // No file: plain words.
        await page.click('#upload-submit');
        await page.waitForSelector('#form-error:text("Take a photo or choose a file first")');
        // The server's limit is shown (4096 MiB by default).
        await page.waitForSelector('#upload-limit:text("A paper may be up to 4.3 GB.")', WAIT);
        // An empty file is refused at once.
        await page.setInputFiles('#file', { name: 'vide.pdf', mimeType: 'application/pdf', buffer: Buffer.alloc(0) });
        await page.waitForSelector('#form-error:text("This file is empty")');
        assert.equal(await text(page, '#file-chosen'), '');
        // A .docx is read as a Word document, not filed as an identity photo; its name stays.
        await page.setInputFiles('#file', { name: 'lettre-caf.docx', mimeType: '', buffer: docx() });
        await page.waitForSelector('#file-chosen:text("lettre-caf.docx")');
        assert.equal(await page.isChecked('#category-other'), true, 'a .docx is filed under "other"');
        assert.equal(await page.inputValue('#doc-name'), 'lettre-caf');
        // A camera name gives way to the category and the date, in the UI language.
        await page.fill('#doc-name', '');
        await page.setInputFiles('#camera', { name: 'IMG_20260312_101112.jpg', mimeType: 'image/jpeg', buffer: Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16]) });
        await page.waitForSelector('#file-chosen:text("IMG_20260312_101112.jpg")');
        assert.equal(await page.isChecked('#category-identity'), true);
        const today = new Date().toLocaleDateString('en', { day: 'numeric', month: 'long', year: 'numeric' });
        assert.equal(await page.inputValue('#doc-name'), `Identity ${today}`);
        await page.check('#category-health');
        assert.equal(await page.inputValue('#doc-name'), `Health ${today}`, 'the proposed name follows the category');
        // Over the limit (a server whose limit is 100 kB): refused before any encryption or
        // upload, at once.
        const creates = [];
        const onRequest = (r) => r.method() === 'POST' && r.url().endsWith('/v1/documents') && creates.push(r.url());
        page.on('request', onRequest);
        await page.route('**/v1/limits', (route) => route.fulfill({ json: { max_document_bytes: 100_000, quota_bytes: 8 << 30 } }));
        const started = Date.now();
        await page.setInputFiles('#file', { name: 'gros.pdf', mimeType: 'application/pdf', buffer: Buffer.concat([Buffer.from('%PDF-1.4 '), Buffer.alloc(300_000, 0x41)]) });
        await page.waitForSelector('#form-error:text("This file is too large")');
        const took = Date.now() - started;
        assert.ok(took < 3000, `the refusal took ${took} ms`);
        await page.click('#upload-submit');
        await page.waitForSelector('#form-error:text("Take a photo or choose a file first")');
        await page.unroute('**/v1/limits');
        page.off('request', onRequest);
        assert.deepEqual(creates, [], 'no upload was created for a file over the limit');
        const docs = await fetch(`${url}/v1/documents`, { headers: { authorization: personToken() } });
        assert.deepEqual(await docs.json(), []);
        await page.fill('#doc-name', '');
        await page.check('#category-identity');
        assert.equal(await page.getAttribute('#camera', 'capture'), 'environment');
        await check(page, '12-upload');
      }
      await page.setInputFiles(f.input, { name: f.file, mimeType: f.mimeType, buffer: f.buffer });
      await page.waitForSelector(`#file-chosen:text("${f.file}")`);
      await page.fill('#doc-name', f.name);
      await page.check(`#category-${f.category}`);
      if (f.buffer.length > 1e6) {
        // The third PATCH of the big file is cut off as if the connection dropped.
        await page.route('**/v1/documents/*/payload?offset=*', (route) => {
          if (route.request().method() !== 'PATCH') return route.continue();
          patches.push(new URL(route.request().url()).searchParams.get('offset'));
          return patches.length === 3 ? route.abort('connectionreset') : route.continue();
        });
        // Progress is shown, as a <progress> the screen reader names.
        await page.evaluate(() => {
          window.progressSeen = new Set();
          const bar = document.getElementById('upload-progress');
          new MutationObserver(() => window.progressSeen.add(`${document.getElementById('upload-status').textContent.split(' ')[0]}:${bar.value > 0 && bar.value < 1}`))
            .observe(bar, { attributes: true, attributeFilter: ['value', 'hidden'] });
          // Long tasks on the page's main thread while the 20 MB file is processed.
          window.longTasks = [];
          new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask' });
        });
      }
      await page.click('#upload-submit');
      await page.waitForSelector('#notice:text("Saved. Only you can open it.")', WAIT);
      await page.waitForSelector(`button.doc:has-text("${f.name}")`, WAIT);
    }
    const big = FILES[2].buffer.length;
    // 20 MB + overhead in pieces that follow the link: 64 KiB first, then what about 4 s
    // at the measured speed sends (up to 4 MiB; loopback is fast). The third PATCH was
    // cut: the upload went on from the offset the server had, the same one.
    const offsets = patches.map(Number);
    const piece = 4 << 20;
    assert.deepEqual(offsets.slice(0, 2), [0, 64 << 10], `PATCH offsets ${patches}`);
    assert.equal(offsets[3], offsets[2], `the cut piece is sent again from its offset (${patches})`);
    const steps = offsets.filter((o, i) => i !== 3).map((o, i, a) => (a[i + 1] ?? big) - o);
    assert.ok(steps.every((n) => n > 0 && n <= piece && n % (64 << 10) === 0 || n === steps.at(-1)), `piece sizes ${steps}`);
    assert.ok(steps.slice(2, -1).includes(piece), `pieces grow to 4 MiB on a fast link (${steps})`);
    assert.ok(workers.some((u) => u.endsWith('/pkg/worker.js')), `encryption ran in a Web Worker (${workers})`);
    const long = await page.evaluate(() => window.longTasks);
    console.log(`20 MB upload: ${long.length} long tasks on the main thread, longest ${Math.max(0, ...long).toFixed(0)} ms`);
    assert.ok(await page.evaluate(() => window.progressSeen.has('Sending…:true') || window.progressSeen.has('Sending…:false')), 'a progress bar while sending');
    assert.ok(big > 20e6);
    await page.unroute('**/v1/documents/*/payload?offset=*');

    assert.equal(await text(page, '#cat-identity'), 'Identity');
    assert.equal(await text(page, '#cat-housing'), 'Housing');
    assert.equal(await text(page, '#cat-income'), 'Income');
    assert.equal(await page.locator('section:has(#cat-identity) button.doc .name').innerText(), FILES[0].name);
    assert.equal(await page.locator('section:has(#cat-housing) button.doc .name').innerText(), FILES[1].name);
    await check(page, '13-vault-list');
  });

  it('story 5: search by name, see a photo and a PDF in the page, download the originals, delete', async () => {
    const { page } = person;
    // Search is done in the page, accents and case folded.
    await page.fill('#search', 'ATTESTATION');
    await page.waitForSelector('#search-count:text("1 found")');
    assert.equal(await page.locator('button.doc').count(), 1);
    await page.fill('#search', 'nothing like this');
    await page.waitForSelector('#search-empty');
    await check(page, '14-vault-search');
    await page.fill('#search', '');
    await page.waitForSelector(`button.doc:has-text("${FILES[2].name}")`);

    for (const f of FILES) {
      await page.click(`button.doc:has-text("${f.name}")`);
      await page.waitForSelector(`h1:text("${f.name}")`);
      await page.evaluate(() => {
        window.longTasks = [];
        new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask' });
      });
      const got = await download(page, '#download');
      if (f.buffer.length > 1e6) {
        const long = await page.evaluate(() => window.longTasks);
        console.log(`20 MB download and decryption in the page: ${long.length} long tasks, longest ${Math.max(0, ...long).toFixed(0)} ms`);
      }
      assert.equal(got.name, f.name + f.file.slice(f.file.lastIndexOf('.')));
      assert.ok(got.bytes.equals(f.buffer), `downloaded bytes of ${f.name}`);
      if (f.mimeType.startsWith('image/')) {
        await page.click('#view');
        await page.waitForSelector('#preview-img');
        await page.waitForFunction(() => document.getElementById('preview-img').naturalWidth === 64, null, WAIT);
        assert.equal(await page.getAttribute('#preview-img', 'alt'), f.name);
        await check(page, '15-document-photo');
        if (f === FILES[0]) {
          // Full screen, zoomed with the buttons and the keys; Escape gives the page back.
          await page.click('#fullscreen');
          await page.waitForSelector('#viewer[role="dialog"] #viewer-img.fit');
          assert.equal(await page.evaluate(() => document.activeElement.id), 'viewer-close');
          const box = await page.locator('#viewer-stage').boundingBox();
          const fitted = await page.locator('#viewer-img').boundingBox();
          assert.ok(fitted.width >= box.width - 1 || fitted.height >= box.height - 1, 'the image fills the screen at first');
          assert.equal(await page.isDisabled('#zoom-out'), true);
          await page.click('#zoom-in');
          assert.equal(await text(page, '#zoom-level'), '150 %');
          await page.keyboard.press('+');
          assert.equal(await text(page, '#zoom-level'), '225 %');
          const zoomed = await page.locator('#viewer-img').boundingBox();
          assert.ok(zoomed.width > box.width * 2, `zoomed in: ${zoomed.width} px in ${box.width} px`);
          await check(page, '15b-document-full-screen');
          await page.keyboard.press('-');
          assert.equal(await text(page, '#zoom-level'), '150 %');
          await page.keyboard.press('Escape');
          await page.waitForSelector('#viewer', { state: 'detached' });
          assert.equal(await page.evaluate(() => document.activeElement.id), 'fullscreen');
        }
      } else if (f === FILES[1]) {
        await page.click('#view');
        await page.waitForSelector(`iframe#preview-pdf[title="${f.name}"]`);
        await page.click('#fullscreen');
        await page.waitForSelector(`#viewer iframe#viewer-pdf[title="${f.name}"]`);
        await page.click('#viewer-close');
        await page.waitForSelector('#viewer', { state: 'detached' });
      }
      await page.click('#back');
      await page.waitForSelector('h1:text("My papers")');
    }

    // A paper opened before in the session opens again without a download.
    const payloadGets = [];
    const onGet = (r) => r.method() === 'GET' && /\/v1\/documents\/[^/]+\/payload/.test(r.url()) && payloadGets.push(r.url());
    page.on('request', onGet);
    await page.click(`button.doc:has-text("${FILES[0].name}")`);
    await page.click('#view');
    await page.waitForFunction(() => document.getElementById('preview-img')?.naturalWidth === 64, null, WAIT);
    page.off('request', onGet);
    assert.deepEqual(payloadGets, [], 'no second download of a paper opened in this session');
    await page.click('#back');
    await page.waitForSelector('h1:text("My papers")');

    // On a slow link (400 kbit/s up, as a weak 3G phone), the upload goes in small pieces
    // and the progress moves by bytes sent, with the step named. Nothing stops it: the
    // network going away, another language, an expired session.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 100, downloadThroughput: 200_000, uploadThroughput: 50_000 });
    const slowPatches = [];
    const onPatch = (r) => r.method() === 'PATCH' && slowPatches.push(Number(new URL(r.url()).searchParams.get('offset')));
    page.on('request', onPatch);
    const scrapToken = tokenOf(page);
    await page.click('#add-document');
    await page.setInputFiles('#file', { name: SCRAP.file, mimeType: SCRAP.mimeType, buffer: SCRAP.buffer });
    await page.fill('#doc-name', SCRAP.name);
    await page.check('#category-other');
    await page.evaluate(() => {
      window.sending = [];
      const status = document.getElementById('upload-status');
      new MutationObserver(() => status.dataset.step === 'sending' && window.sending.push([status.textContent, document.getElementById('upload-progress').value]))
        .observe(status, { childList: true, characterData: true, subtree: true, attributes: true });
    });
    await page.click('#upload-submit');
    // The network goes during the upload: the screen says so, and when the network is
    // back the upload goes on by itself (nobody touches the page).
    await page.waitForFunction(() => document.getElementById('upload-status')?.dataset.step === 'sending' && document.getElementById('upload-progress').value > 0.25, null, { ...WAIT, polling: 100 });
    await cdp.send('Network.emulateNetworkConditions', { offline: true, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await page.waitForSelector('#upload-status[data-step="waiting"]:has-text("No network")', WAIT);
    await page.waitForTimeout(1500);
    const slower = { offline: false, latency: 100, downloadThroughput: 200_000, uploadThroughput: 25_000 };
    await cdp.send('Network.emulateNetworkConditions', slower);
    await page.waitForSelector('#upload-status[data-step="sending"]', WAIT);
    // Another language mid-upload: the screen is drawn again and still shows the upload.
    await page.click('button[lang="fr"]');
    await page.waitForSelector('#upload-status:has-text("Envoi")', WAIT);
    assert.equal(await page.getAttribute('#upload-submit', 'disabled'), '', 'still sending, "Save" stays disabled');
    await page.click('button[lang="en"]');
    await page.waitForSelector('#upload-status:has-text("Sending")', WAIT);
    // The session ends on the server mid-upload: log in again, the upload goes on by itself.
    const revoked = await fetch(`${url}/v1/logout`, { method: 'POST', headers: { authorization: scrapToken() } });
    assert.equal(revoked.status, 204);
    await page.waitForSelector('#login-submit', WAIT);
    await login(page, PERSON, PERSON.pin, '#upload-status[data-step="sending"]');
    assert.equal(await page.inputValue('#doc-name'), SCRAP.name);
    await page.waitForSelector(`button.doc:has-text("${SCRAP.name}")`, WAIT);
    await page.waitForSelector('#notice:text("Saved. Only you can open it.")');
    page.off('request', onPatch);
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await cdp.detach();
    const sending = await page.evaluate(() => window.sending);
    const fractions = [...new Set(sending.map(([, v]) => v))];
    assert.ok(fractions.filter((v) => v > 0 && v < 1).length >= 4, `progress moved by bytes: ${fractions}`);
    assert.match(sending.at(-1)[0], /^Sending… [\d.]+ KB of 600(\.\d)? KB \(\d+ %\)$/);
    assert.ok(slowPatches.length >= 2, `several pieces on a slow link (offsets ${slowPatches})`);
    assert.equal(slowPatches.filter((o) => o === 0).length, 1, `never sent again from the start (offsets ${slowPatches})`);
    const distinct = [...new Set(slowPatches)];
    assert.ok(distinct.every((o, i) => i === 0 || (o > distinct[i - 1] && o - distinct[i - 1] <= 256 << 10)), `small pieces on a slow link (offsets ${slowPatches})`);

    // A reload mid-upload: the encrypted file and its upload id wait in IndexedDB
    // (ciphertext only); after logging in, the vault asks to finish sending it.
    const half = { name: 'Avis impot moitie', canary: 'CANARY-RELOAD-4c1d' };
    const reloadCdp = await page.context().newCDPSession(page);
    await reloadCdp.send('Network.enable');
    await reloadCdp.send('Network.emulateNetworkConditions', { offline: false, latency: 100, downloadThroughput: 200_000, uploadThroughput: 25_000 });
    await page.click('#add-document');
    await page.setInputFiles('#file', { name: 'avis.pdf', mimeType: 'application/pdf', buffer: Buffer.concat([Buffer.from(`%PDF-1.4 ${half.canary} `), Buffer.alloc(300_000, 0x43)]) });
    await page.fill('#doc-name', half.name);
    await page.check('#category-income');
    await page.click('#upload-submit');
    await page.waitForFunction(() => document.getElementById('upload-status')?.dataset.step === 'sending' && document.getElementById('upload-progress').value > 0.2, null, { ...WAIT, polling: 100 });
    const kept = await page.evaluate(async () => {
      const db = await new Promise((resolve, reject) => {
        const q = indexedDB.open('coffre-uploads');
        q.onsuccess = () => resolve(q.result);
        q.onerror = () => reject(q.error);
      });
      const records = await new Promise((resolve) => {
        const q = db.transaction('uploads').objectStore('uploads').getAll();
        q.onsuccess = () => resolve(q.result);
      });
      db.close();
      const latin1 = (bytes) => new TextDecoder('latin1').decode(bytes);
      return Promise.all(records.map(async (r) => ({ fields: Object.keys(r).sort(), text: latin1(await r.payload.arrayBuffer()) + latin1(r.sealed) + latin1(r.envelope) })));
    });
    assert.equal(kept.length, 1, 'the running upload is kept in IndexedDB');
    assert.deepEqual(kept[0].fields, ['account', 'envelope', 'id', 'payload', 'sealed', 'size']);
    assert.ok(!kept[0].text.includes(half.canary) && !kept[0].text.includes(half.name), 'IndexedDB holds ciphertext only');
    await reloadCdp.detach();
    await page.reload();
    await login(page, PERSON, PERSON.pin, `.waiting-upload:has-text("${half.name}")`);
    await check(page, '16a-finish-sending');
    await page.click('.waiting-upload .finish-upload');
    await page.waitForSelector('#notice:text("Saved. Only you can open it.")', WAIT);
    await page.waitForSelector(`button.doc:has-text("${half.name}")`, WAIT);
    assert.equal(await page.locator('.waiting-upload').count(), 0);
    const halfId = await page.getAttribute(`button.doc:has-text("${half.name}")`, 'data-id');
    await page.click(`button.doc:has-text("${half.name}")`);
    const halfBytes = await download(page, '#download');
    assert.ok(halfBytes.bytes.includes(Buffer.from(half.canary)), 'the finished upload opens whole');
    assert.equal(halfBytes.bytes.length, 300_000 + `%PDF-1.4 ${half.canary} `.length);
    assert.equal(await page.evaluate(() => new Promise((resolve) => {
      const q = indexedDB.open('coffre-uploads');
      q.onsuccess = () => {
        const all = q.result.transaction('uploads').objectStore('uploads').count();
        all.onsuccess = () => resolve(all.result);
      };
    })), 0, 'a finished upload is forgotten');
    const gone = await fetch(`${url}/v1/documents/${halfId}`, { method: 'DELETE', headers: { authorization: scrapToken() } });
    assert.equal(gone.status, 204);
    await page.click('#back');
    await page.waitForSelector('h1:text("My papers")');

    // Another reload mid-upload, and this time "Do not send it": the kept ciphertext is
    // dropped and the server forgets the half-sent paper.
    const dropCdp = await page.context().newCDPSession(page);
    await dropCdp.send('Network.enable');
    await dropCdp.send('Network.emulateNetworkConditions', { offline: false, latency: 100, downloadThroughput: 200_000, uploadThroughput: 25_000 });
    await page.click('#add-document');
    await page.setInputFiles('#file', { name: 'draft.pdf', mimeType: 'application/pdf', buffer: Buffer.concat([Buffer.from('%PDF-1.4 CANARY-DROPPED-77aa '), Buffer.alloc(300_000, 0x45)]) });
    await page.fill('#doc-name', 'Not to keep');
    await page.click('#upload-submit');
    await page.waitForFunction(() => document.getElementById('upload-status')?.dataset.step === 'sending' && document.getElementById('upload-progress').value > 0.1, null, { ...WAIT, polling: 100 });
    const keptIds = () => page.evaluate(async () => {
      const db = await new Promise((resolve, reject) => {
        const q = indexedDB.open('coffre-uploads');
        q.onsuccess = () => resolve(q.result);
        q.onerror = () => reject(q.error);
      });
      const ids = await new Promise((resolve) => {
        const q = db.transaction('uploads').objectStore('uploads').getAllKeys();
        q.onsuccess = () => resolve(q.result);
      });
      db.close();
      return ids;
    });
    const [droppedId] = await keptIds();
    assert.ok(droppedId, 'the running upload is kept');
    await dropCdp.detach();
    await page.reload();
    await login(page, PERSON, PERSON.pin, '.waiting-upload:has-text("Not to keep")');
    await page.click('.waiting-upload .abandon-upload');
    await page.waitForSelector('.waiting-upload', { state: 'detached', ...WAIT });
    assert.deepEqual(await keptIds(), [], 'the kept ciphertext is dropped');
    assert.equal(await page.locator('button.doc:has-text("Not to keep")').count(), 0);
    const again = await fetch(`${url}/v1/documents/${droppedId}`, { method: 'DELETE', headers: { authorization: scrapToken() } });
    assert.equal(again.status, 404, 'the server already forgot the half-sent paper');
    await page.reload();
    await login(page, PERSON, PERSON.pin, `button.doc:has-text("${SCRAP.name}")`);
    assert.equal(await page.locator('.waiting-upload').count(), 0, 'and nothing is asked again');

    // Delete: asks first, then the paper is gone for good (the server forgets it too).
    const scrapId = await page.getAttribute(`button.doc:has-text("${SCRAP.name}")`, 'data-id');
    await page.click(`button.doc:has-text("${SCRAP.name}")`);
    await page.click('#delete');
    await page.waitForSelector('#confirm-delete-text:text("for good")');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'delete-no');
    await check(page, '16-document-delete');
    await page.click('#delete-no');
    assert.equal(await page.isHidden('#confirm-delete'), true);
    await page.click('#delete');
    await page.click('#delete-yes');
    await page.waitForSelector(`#notice:text("“${SCRAP.name}” is deleted.")`, WAIT).catch(async (e) => {
      // Say what the page showed instead (an error, or still waiting for the server).
      const shown = await page.evaluate(() => document.getElementById('form-error')?.textContent ?? '(no error box)');
      throw new Error(`${e.message}\nthe page shows: ${shown}`);
    });
    await page.waitForSelector(`button.doc:has-text("${FILES[0].name}")`, WAIT);
    assert.equal(await page.locator(`button.doc:has-text("${SCRAP.name}")`).count(), 0);
    assert.equal(await page.locator('button.doc').count(), FILES.length);
    assert.ok(!existsSync(join(dir, 'data', 'payloads', scrapId)), 'the deleted payload file is gone');
  });

  it('story 6: share with the worker after comparing safety words; the worker opens it; revoke', async () => {
    const { page } = person;
    const w = worker.page;
    const f = FILES[0];
    await page.click(`button.doc:has-text("${f.name}")`);
    await page.waitForSelector('#only-you', WAIT);
    await page.click('#share');
    await page.waitForSelector(`h1:text("Share “${f.name}”")`);
    await page.fill('#handle', 'nobody.here');
    await page.click('#find-worker');
    await page.waitForSelector('#form-error:text("Nobody has this name in Coffre")', WAIT);
    await check(page, '17-share-find-worker');
    await page.fill('#handle', WORKER.handle);
    await page.click('#find-worker');
    await page.waitForSelector('#their-fingerprint .words li', WAIT);
    // Face to face: the words on the person's phone are the worker's own words.
    const theirs = await page.locator('#their-fingerprint .words li').allInnerTexts();
    const mine = await w.locator('#my-fingerprint .words li').allInnerTexts();
    assert.equal(theirs.length, 6);
    assert.deepEqual(theirs, mine);
    assert.equal(await text(page, '#their-fingerprint .number'), await text(w, '#my-fingerprint .number'));
    await page.waitForSelector('#their-fingerprint svg[role="img"]');
    await check(page, '18-share-check-words');
    await page.selectOption('#share-expiry', { label: 'one week' });
    await page.click('#share-confirm');
    await page.waitForSelector(`#notice:text("Shared with ${WORKER.handle}")`, WAIT);
    await page.waitForSelector(`#who li:has-text("${WORKER.handle}")`, WAIT);
    await check(page, '19-document-shared');

    // The worker sees it under "shared with me", and opens it.
    await w.click('#to-unlock');
    await w.click('text=Back');
    await w.waitForSelector(`#shared button.doc:has-text("${f.name}")`, WAIT);
    const docId = await w.getAttribute(`#shared button.doc:has-text("${f.name}")`, 'data-id');
    await w.click(`#shared button.doc:has-text("${f.name}")`);
    await w.waitForSelector(`h1:text("${f.name}")`);
    assert.equal(await text(w, '#shared-by'), `From ${PERSON.handle}`);
    const got = await download(w, '#download');
    assert.ok(got.bytes.equals(f.buffer), 'the worker downloads the original bytes');
    await check(w, '20-worker-shared-document');

    // Revoke: the worker can no longer open it.
    await page.click(`#who button[aria-label="Stop sharing with ${WORKER.handle}"]`);
    await page.waitForSelector(`#notice:text("${WORKER.handle} can no longer open this paper.")`, WAIT);
    await page.waitForSelector('#only-you', WAIT);
    await w.click('#back');
    await w.waitForSelector('#shared-empty', WAIT);
    // And the server refuses the payload to the worker's session.
    const shared = await fetch(`${url}/v1/shared`, { headers: { authorization: workerToken() } });
    assert.deepEqual(await shared.json(), []);
    const refused = await fetch(`${url}/v1/documents/${docId}/payload`, { headers: { authorization: workerToken() } });
    assert.ok([403, 404].includes(refused.status), `payload after revoke: ${refused.status}`);
    await page.click('#back');
    await page.waitForSelector('h1:text("My papers")');
  });

  it('story 7: a link with an end date and an opening limit opens without an account', async () => {
    const { page } = person;
    const f = FILES[1];
    await page.click(`button.doc:has-text("${f.name}")`);
    await page.click('#make-link');
    await page.waitForSelector(`h1:text("A link for “${f.name}”")`);
    await check(page, '21-link-create');
    await page.selectOption('#link-expiry', { label: 'one day' });
    await page.selectOption('#link-max', { label: '3 times' });
    await page.click('#link-submit');
    await page.waitForSelector('h1:text("Your link is ready")', WAIT);
    const link = await page.inputValue('#link-url');
    assert.match(link, new RegExp(`^${url}/#/link/[0-9a-f]{32}/AGE-SECRET-KEY-1[0-9A-Z]+$`));
    await page.waitForSelector('#link-qr svg[role="img"]');
    await check(page, '22-link-made');

    // A visitor with no account, in French.
    const visitor = await newContext(browser, url, 'fr-FR');
    const seen = [];
    visitor.page.on('request', (r) => seen.push(r.url()));
    await visitor.page.goto(link);
    await visitor.page.waitForSelector(`h1:text("${f.name}")`, WAIT);
    // Seeing the page counts nothing: three openings are left until the paper is fetched.
    assert.match(await text(visitor.page, '#link-left'), /^Ce lien peut encore être ouvert 3 fois, jusqu’au /);
    // The size shown is the original file's, not the ciphertext's.
    assert.match(await text(visitor.page, '#doc-facts'), new RegExp(`· ${f.buffer.length} octets$`));
    assert.equal(await visitor.page.locator('#logout').count(), 0);
    const got = await download(visitor.page, '#download');
    assert.equal(got.name, f.name + '.pdf');
    assert.ok(got.bytes.equals(f.buffer), 'the visitor downloads the original bytes');
    assert.match(await text(visitor.page, '#link-left'), / 2 fois/);
    await check(visitor.page, '23-link-visitor');
    // The key never left the browser: no request carries it.
    const key = link.split('/').pop();
    assert.ok(seen.every((u) => !u.includes(key) && !u.includes(key.toLowerCase())), 'the link key reached the network');

    // Reloading the page and fetching again, as a visitor on a bad network does, re-uses
    // the same grant: still two left, on the page and in the owner's list.
    await visitor.page.reload();
    await visitor.page.waitForSelector(`h1:text("${f.name}")`, WAIT);
    assert.match(await text(visitor.page, '#link-left'), / 2 fois/);
    const again = await download(visitor.page, '#download');
    assert.ok(again.bytes.equals(f.buffer));
    assert.match(await text(visitor.page, '#link-left'), / 2 fois/);

    // A link cut short says so and asks nothing of the server.
    seen.length = 0;
    for (const cut of [link.slice(0, -4), link.slice(0, link.lastIndexOf('/') + 1), link.slice(0, link.lastIndexOf('/') + 12)]) {
      await visitor.page.goto(`${url}/`);
      await visitor.page.goto(cut);
      await visitor.page.waitForSelector('#form-error:text("Ce lien est coupé")', WAIT);
    }
    await check(visitor.page, '23-link-cut');
    assert.deepEqual(seen.filter((u) => u.includes('/v1/links/')), [], 'a cut link made a link request');
    // A link with a wrong key opens nothing (and says so in plain words), and uses nothing.
    // (A whole key of another link: a made-up one would fail its checksum, as a cut one does.)
    const otherKey = await visitor.page.evaluate(async () => {
      const pkg = await import('/pkg/index.js');
      await pkg.default();
      const k = pkg.Identity.generate();
      try {
        return k.toString();
      } finally {
        k.free();
      }
    });
    await visitor.page.goto(`${url}/`);
    await visitor.page.goto(link.replace(key, otherKey));
    await visitor.page.waitForSelector('#form-error:text("Ce lien n’est pas complet")', WAIT);
    assert.deepEqual(seen.filter((u) => u.includes('/grants')), [], 'a wrong key asked for a grant');
    // The owner sees the link and how many openings are left.
    await page.click('#back');
    await page.waitForSelector('#who li[data-link]', WAIT);
    assert.match(await text(page, '#who li[data-link]'), /2 openings left/);
    // Two other visitors (their own tabs) take the last two; the next one is refused.
    for (const left of [1, 0]) {
      const tab = await visitor.context.newPage();
      await tab.goto(link);
      await tab.waitForSelector(`h1:text("${f.name}")`, WAIT);
      await download(tab, '#download');
      assert.match(await text(tab, '#link-left'), new RegExp(` ${left} fois`));
      await tab.close();
    }
    const ended = await visitor.context.newPage();
    await ended.goto(link);
    await ended.waitForSelector('#form-error:text("Ce lien est fini")', WAIT);
    await check(ended, '24-link-ended');
    // The first visitor's tab, within ten minutes of its grant, still shows the paper.
    await visitor.page.goto(`${url}/`);
    await visitor.page.goto(link);
    await visitor.page.waitForSelector(`h1:text("${f.name}")`, WAIT);
    await visitor.context.close();
    await page.click('#back');
    await page.waitForSelector('h1:text("My papers")');
  });

  it('story 8: change the PIN (other devices logged out, the half-filled form comes back), strangers cannot lock the person out, unlock, recovery code', async () => {
    const { page, context } = person;
    // A second device of the same person, in the middle of adding a paper.
    const other = await context.newPage();
    other.on('pageerror', (e) => pageErrors.push(e));
    await other.goto(`${url}/`);
    await login(other, PERSON, PERSON.pin, 'h1:text("My papers")');
    await other.click('#add-document');
    await other.fill('#doc-name', 'Typed before the change');
    await other.check('#category-health');

    await page.click('#to-account');
    await page.waitForSelector('h1:text("My passphrase")');
    await page.check('#kind-pin');
    await page.fill('#secret', PERSON.newPin);
    await page.fill('#confirm-secret', PERSON.newPin);
    await check(page, '25-change-secret');
    await page.click('#change-submit');
    await page.waitForSelector('#notice:text("Done. From now on, use your new secret.")', WAIT);

    // The other device's session was closed: its next step returns to the login screen,
    // and logging in again brings back what was typed.
    await other.setInputFiles('#file', { name: 'x.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF x') });
    await other.click('#upload-submit');
    await other.waitForSelector('#notice:text("You were logged out")', WAIT);
    assert.equal(await other.inputValue('#handle'), PERSON.handle);
    await other.fill('#passphrase', PERSON.pin);
    await other.click('#login-submit');
    await other.waitForSelector('#form-error:text("This name or this PIN is not right")', WAIT);
    await other.fill('#passphrase', PERSON.newPin);
    await other.click('#login-submit');
    // The form comes back with what was typed and the chosen file, and the upload the
    // closed session cut goes on by itself: the paper is saved under the typed name, in
    // the chosen category.
    await other.waitForSelector('#notice:text("Saved. Only you can open it.")', WAIT);
    await other.waitForSelector('section:has(#cat-health) button.doc:has-text("Typed before the change")', WAIT);
    await other.close();

    // Strangers cannot shut the person out. On a shelter's shared computer (no device
    // credential), three wrong tries, then a wait before the next; the person's own phone
    // keeps its own tries, and the worker unblocks the name at once.
    await page.click('#logout');
    const kiosk = await newContext(browser, url, 'en-US');
    const k = kiosk.page;
    await k.goto(`${url}/`);
    await k.waitForSelector('h1:text("Open my vault")', WAIT);
    await k.check('#shared');
    await k.fill('#handle', PERSON.handle);
    for (let i = 0; i < 3; i++) {
      await k.fill('#passphrase', `00000${i}`);
      await k.click('#login-submit');
      await k.waitForSelector('#form-error:not(:empty)', WAIT);
      await k.waitForSelector('#login-submit:not([disabled])');
      // A shared computer does not know the person uses a PIN: the general words.
      assert.match(await text(k, '#form-error'), /This name or this passphrase is not right/, `try ${i}`);
    }
    await k.fill('#passphrase', PERSON.newPin);
    await k.click('#login-submit');
    await k.waitForSelector('#form-error:text("Too many wrong tries for this name")', WAIT);
    assert.match(await text(k, '#form-error'), /Try again in 1 min\./);
    await check(k, '26-login-throttled');
    // The person's phone: a wrong try names the PIN, then the right one opens the vault,
    // while the shared computer still waits.
    await page.fill('#handle', PERSON.handle);
    await page.fill('#passphrase', '000009');
    await page.click('#login-submit');
    await page.waitForSelector('#form-error:text("This name or this PIN is not right")', WAIT);
    assert.equal(await page.getAttribute('#passphrase', 'inputmode'), 'numeric', 'a known PIN gets the number keyboard');
    await page.fill('#passphrase', PERSON.newPin);
    await page.click('#login-submit');
    await page.waitForSelector('h1:text("My papers")', WAIT);
    await page.click('#logout');
    const w = worker.page;
    await w.click('#to-unlock');
    await w.waitForSelector('h1:text("Unlock an account")');
    await w.fill('#handle', 'nobody.here');
    await w.click('#unlock-submit');
    await w.waitForSelector('#form-error:text("Nobody has this name")', WAIT);
    await w.fill('#handle', PERSON.handle);
    await check(w, '27-unlock');
    await w.click('#unlock-submit');
    await w.waitForSelector('#notice:text("The account is unlocked")', WAIT);
    await k.click('#login-submit');
    await k.waitForSelector('h1:text("My papers")', WAIT);
    // The shared computer kept nothing of the person: no device credential, no PIN kind.
    const kept = await k.evaluate(() => Object.keys(localStorage));
    assert.ok(!kept.includes('coffre.device') && !kept.includes('coffre.kind'), `kept: ${kept}`);
    assert.ok((await page.evaluate(() => localStorage.getItem('coffre.device')))?.length > 0, 'the phone keeps its credential');
    // An upload on the shared computer, slowed so that it is caught half sent: the
    // encrypted file is not kept in IndexedDB (nor anything else of the origin's storage).
    const kcdp = await kiosk.context.newCDPSession(k);
    await kcdp.send('Network.enable');
    await kcdp.send('Network.emulateNetworkConditions', { offline: false, latency: 100, downloadThroughput: 200_000, uploadThroughput: 25_000 });
    await k.click('#add-document');
    await k.setInputFiles('#file', { name: 'kiosk.pdf', mimeType: 'application/pdf', buffer: Buffer.concat([Buffer.from('%PDF-1.4 CANARY-KIOSK-2b7e '), Buffer.alloc(200_000, 0x44)]) });
    await k.fill('#doc-name', 'Sent from the shelter');
    await k.click('#upload-submit');
    await k.waitForFunction(() => document.getElementById('upload-status')?.dataset.step === 'sending' && document.getElementById('upload-progress').value > 0.2, null, { ...WAIT, polling: 100 });
    const { databaseNames } = await kcdp.send('IndexedDB.requestDatabaseNames', { securityOrigin: url });
    assert.deepEqual(databaseNames, [], 'a shared computer keeps no upload in IndexedDB');
    await kcdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await k.waitForSelector('#notice:text("Saved. Only you can open it.")', WAIT);
    assert.deepEqual((await kcdp.send('IndexedDB.requestDatabaseNames', { securityOrigin: url })).databaseNames, []);
    await kcdp.detach();
    await k.click('#logout');
    await kiosk.context.close();

    // Forgotten PIN: the recovery code from the kit opens the vault and sets a new PIN.
    await page.click('#to-recovery');
    await page.waitForSelector('h1:text("I forgot my secret")');
    await page.fill('#handle', PERSON.handle);
    await page.fill('#recovery-code', 'AAAA-BBBB');
    await page.check('#kind-pin');
    await page.fill('#secret', PERSON.recoveredPin);
    await page.fill('#confirm-secret', PERSON.recoveredPin);
    await page.click('#recover-submit');
    await page.waitForSelector('#form-error:text("This code is not written right")', WAIT);
    await check(page, '28-recovery');
    await page.fill('#recovery-code', recoveryCode.toLowerCase().replaceAll('-', ' '));
    await page.click('#recover-submit');
    await page.waitForSelector('#notice:text("Your vault is open with your new secret")', WAIT);
    await page.waitForSelector(`button.doc:has-text("${FILES[2].name}")`, WAIT);
    // Every paper, with the one the second device finished after the PIN change and the
    // one sent from the shared computer.
    assert.equal(await page.locator('button.doc').count(), FILES.length + 2);
    await page.click('#logout');
    await login(page, PERSON, PERSON.recoveredPin, 'h1:text("My papers")');
    // Log out drops the keys: the page holds no account any more.
    await page.click('#logout');
    await page.waitForSelector('#notice:text("You are logged out")');
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
    const needles = [...FILES, SCRAP].flatMap((f) => [
      Buffer.from(f.buffer.toString('latin1').match(/CANARY-[A-Z]+-[0-9a-f]+/)[0]),
      Buffer.from(f.name),
      Buffer.from(f.file),
    ]);
    assert.equal(needles.length, 12);
    const walk = (d) => readdirSync(d).flatMap((n) => {
      const p = join(d, n);
      const st = statSync(p);
      // Regular files only: the object store's directories hold sockets too.
      return st.isDirectory() ? walk(p) : st.isFile() ? [p] : [];
    });
    // On the cluster backends the bytes live elsewhere: the database's and the object
    // store's own directories are scanned too (COFFRE_WEB_SCAN_DIRS, colon-separated).
    const scanned = [data, ...(process.env.COFFRE_WEB_SCAN_DIRS ?? '').split(':').filter(Boolean)];
    for (const file of scanned.flatMap(walk)) {
      const bytes = readFileSync(file);
      for (const n of needles) assert.equal(bytes.indexOf(n), -1, `${file} holds "${n.toString().slice(0, 30)}" in clear`);
    }
  });
});
