// Recovery through referents in Chromium, against the real coffre-server on loopback:
// a person with three referents at two structures loses PIN and paper, asks on a new
// browser, two referents compare the words and approve, the old device shows the
// warning, and after the structure's (test-shortened) delay the person sets a new PIN,
// sees their papers and gets a new kit. Then: the person cancels from the old device;
// and a referent shown a substituted key sees different words and refuses.
// Screenshots of each screen at 360 and 1280 px, in fr, en and ar, in
// tests/web/screenshots/recovery/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, SERVER, SHOTS, WAIT, admin, newContext, pageErrors, check, text, login, startServer, stopServer, launchChromium, registerWorker } from './harness.js';

const DIR = join(SHOTS, 'recovery');
/** The person's structure shortens the delay to this (seconds); k = 2 allows it. */
const DELAY = 6;
const PERSON = { handle: 'amina.r', pin: '482915', newPin: '730264', thirdPin: '615039' };
const WORKERS = [
  { handle: 'nadia.nord', passphrase: 'les oiseaux chantent le matin', org: 0 },
  { handle: 'paul.nord', passphrase: 'un cafe chaud sur la table', org: 0 },
  { handle: 'ines.sud', passphrase: 'la mer est calme ce soir', org: 1 },
];

/** Every screen in the three languages, both sizes; back to English after. */
async function shots(page, name) {
  for (const lang of ['fr', 'ar', 'en']) {
    await page.click(`button[lang="${lang}"]`);
    await page.waitForFunction((l) => document.documentElement.lang === l, lang);
    await check(page, `${name}-${lang}`, DIR);
  }
}

/** The six safety words shown in `selector`. */
const words = (page, selector) => page.locator(`${selector} .words li`).allInnerTexts();


/** A new browser: "I lost my PIN and my paper". Returns its page and the words shown. */
async function askOnNewDevice(browser, url, handle) {
  const ctx = await newContext(browser, url, 'en-US');
  const { page } = ctx;
  await page.goto(`${url}/`);
  await page.waitForSelector('#to-ask-recovery', WAIT);
  await page.click('#to-ask-recovery');
  await page.waitForSelector('h1:text("I lost my PIN and my paper")', WAIT);
  await page.fill('#handle', handle);
  await page.click('#ask-submit');
  await page.waitForSelector(`h1:text("Recovery of ${handle}")`, WAIT);
  await page.waitForSelector('#request-fingerprint .words li', WAIT);
  return { ctx, page, words: await words(page, '#request-fingerprint') };
}

/** A referent opens the request from their home screen. */
async function openAsk(page, handle) {
  await page.click('#to-account');
  await page.click('button:text-is("Back")');
  await page.waitForSelector(`#asks .ask:has-text("${handle}")`, WAIT);
  await page.click(`#asks .ask:has-text("${handle}")`);
  await page.waitForSelector(`h1:text("Recovery of ${handle}")`, WAIT);
  await page.waitForSelector('#request-fingerprint .words li', WAIT);
}

describe('recovery through referents', () => {
  let dir;
  let data;
  let server;
  let url;
  let browser;
  const workers = [];
  let person;
  let doc = 'Titre de sejour';

  before(async () => {
    assert.ok(existsSync(SERVER), `build it first (${SERVER})`);
    assert.ok(existsSync(join(ROOT, 'pkg', 'gen', 'coffre_wasm_bg.wasm')), 'pkg/gen is missing: run cargo xtask test');
    rmSync(DIR, { recursive: true, force: true });
    mkdirSync(DIR, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'coffre-web-recovery-'));
    data = join(dir, 'data');
    const orgs = [admin('org', 'create', 'Relais Nord', '--data', data), admin('org', 'create', 'Accueil Sud', '--data', data)];
    admin('org', 'recovery-delay', '--org', orgs[0], String(DELAY), '--data', data);
    const invites = WORKERS.map((w) => admin('invite', 'create', '--org', orgs[w.org], '--data', data));
    ({ server, url } = await startServer(dir, data));
    browser = await launchChromium();
    for (const [i, w] of WORKERS.entries()) workers.push(await registerWorker(browser, url, invites[i], w));
  });

  after(async () => {
    await browser?.close();
    await stopServer(server);
    if (dir) rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(pageErrors.map(String), [], 'uncaught errors in the pages');
  });

  it('the person chooses three referents at two structures, each checked with the safety words', async () => {
    // The first worker creates the person's account with them.
    const w = workers[0].page;
    await w.click('#create-beneficiary');
    await w.fill('#handle', PERSON.handle);
    await w.check('#kind-pin');
    await w.fill('#secret', PERSON.pin);
    await w.fill('#confirm-secret', PERSON.pin);
    await w.check('#consent');
    // With the person beside them, the worker becomes their first referent.
    assert.equal(await w.isChecked('#be-referent'), true);
    await w.click('#create-submit');
    await w.waitForSelector('h1:text("Recovery kit")', WAIT);
    await w.click('#kit-done');

    person = await newContext(browser, url, 'en-US');
    const { page } = person;
    await page.goto(`${url}/`);
    await page.waitForSelector('#login-submit', WAIT);
    await login(page, PERSON, PERSON.pin, 'h1:text("My papers")');
    // A paper to find again after the recovery.
    await page.click('#add-document');
    await page.setInputFiles('#file', { name: 'titre.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4 titre de sejour CANARY-RECOVERY-4b1e') });
    await page.fill('#doc-name', doc);
    await page.click('#upload-submit');
    await page.waitForSelector('#notice:text("Saved")', WAIT);

    await page.click('#to-account');
    await page.waitForSelector('#to-referents', WAIT);
    await page.click('#to-referents');
    // One referent from the creation: one of one, so at least 72 hours of delay.
    await page.waitForSelector('#referents-rule', WAIT);
    assert.match(await text(page, '#referents-rule'), /1 of your 1 referents must agree\. Then you wait 72 hours/);
    assert.match(await text(page, '#referent-list'), /nadia\.nord, Relais Nord/);
    await shots(page, '01-referents-from-creation');
    // The list to change starts with the referents the person has.
    await page.waitForSelector(`#chosen-referents li:has-text("${WORKERS[0].handle}")`, WAIT);
    await page.fill('#handle', WORKERS[0].handle);
    await page.click('#find-referent');
    await page.waitForSelector('#form-error:text("already in your list")', WAIT);
    for (const [i, wk] of WORKERS.entries()) {
      if (i === 0) continue;
      await page.fill('#handle', wk.handle);
      await page.click('#find-referent');
      await page.waitForSelector('#their-fingerprint .words li', WAIT);
      // The person compares with the words on the worker's own screen.
      assert.deepEqual(await words(page, '#their-fingerprint'), await words(workers[i].page, '#my-fingerprint'));
      if (i === 1) await shots(page, '02-referent-check');
      await page.click('#referent-same');
      await page.waitForSelector(`#chosen-referents li:has-text("${wk.handle}")`, WAIT);
    }
    assert.equal(await page.inputValue('#threshold'), '2');
    assert.equal(await text(page, '#threshold option[value="2"]'), '2 of 3');
    await shots(page, '03-referents-chosen');
    await page.click('#referents-save');
    await page.waitForSelector('#notice:text("Your referents are saved")', WAIT);
    await page.waitForSelector('#referents-rule', WAIT);
    assert.match(await text(page, '#referents-rule'), /2 of your 3 referents must agree/);
    assert.equal(await page.locator('#referent-list li').count(), 3);
    assert.match(await text(page, '#referent-list'), /ines\.sud, Accueil Sud/);
    assert.doesNotMatch(await text(page, '#referents'), /\b(null|false|undefined)\b/);
    await shots(page, '04-referents-saved');
    await page.click('button:text-is("Back")');
    await page.waitForSelector('h1:text("My papers")', WAIT);
  });

  it('lost PIN and paper: a new browser asks, two referents approve, the delay runs, a new PIN opens the vault', async () => {
    const asking = await askOnNewDevice(browser, url, PERSON.handle);
    const { page } = asking;
    await page.waitForSelector('#request-status:text("0 referents agreed so far")', WAIT);
    assert.equal(await page.isVisible('#finish-form'), false, 'no new secret before the referents and the delay');
    await shots(page, '05-asking-waiting');

    // The old device shows the warning (it checks every few seconds).
    const old = person.page;
    await old.waitForSelector('#recovery-warning:not([hidden])', WAIT);
    assert.match(await text(old, '#recovery-warning-text'), /Someone asked to recover your vault/);
    assert.doesNotMatch(await text(old, '#recovery-warning'), /\b(null|false|undefined)\b/);
    await shots(old, '06-old-device-warning');

    // Two referents, at two structures, check the person and the words, then approve.
    for (const i of [0, 2]) {
      const r = workers[i].page;
      await openAsk(r, PERSON.handle);
      assert.deepEqual(await words(r, '#request-fingerprint'), asking.words, 'the referent sees the words the device shows');
      if (i === 0) await shots(r, '07-referent-check');
      await r.click('#ask-approve');
      await r.waitForSelector('#notice:text("You agreed")', WAIT);
      if (i === 0) await shots(r, '08-referent-home-agreed');
    }

    // The delay (shortened by the structure), then the new PIN.
    await page.waitForSelector('#request-status:text("Your vault opens on")', WAIT);
    await shots(page, '09-asking-delay');
    await page.waitForSelector('#finish-form:not([hidden])', WAIT);
    await shots(page, '10-asking-ready');
    await page.check('#kind-pin');
    await page.fill('#secret', PERSON.newPin);
    await page.fill('#confirm-secret', PERSON.newPin);
    await page.click('#finish-submit');
    await page.waitForSelector('h1:text("Recovery kit")', WAIT);
    await page.waitForSelector('#recovered-notice', WAIT);
    const code = (await text(page, '#recovery-code')).trim();
    assert.match(code, /^[A-Z0-9]{4}(-[A-Z0-9]{4}){7}$/);
    assert.match(await text(page, '#kit-service'), new RegExp(url.replace(/[.]/g, '\\.')));
    assert.match(await text(page, '#kit-lose-both'), /only your referents can give you your vault back/);
    await shots(page, '11-new-kit');
    await page.click('#kit-done');
    await page.waitForSelector(`#documents button.doc:has-text("${doc}")`, WAIT);
    await page.click(`#documents button.doc:has-text("${doc}")`);
    await page.waitForSelector('#download', WAIT);
    await shots(page, '12-paper-after-recovery');

    // The old device's session ended with the old PIN: it goes back to the login screen.
    await old.waitForSelector('#notice:text("You were logged out")', WAIT);
    await asking.ctx.context.close();
  });

  it('second run: the person cancels from the old device', async () => {
    const old = person.page;
    await old.fill('#passphrase', PERSON.newPin);
    await old.click('#login-submit');
    await old.waitForSelector('h1:text("My papers")', WAIT);
    const asking = await askOnNewDevice(browser, url, PERSON.handle);
    await old.waitForSelector('#recovery-warning:not([hidden])', WAIT);
    await old.click('#recovery-cancel');
    await old.waitForSelector('#notice:text("The request is cancelled")', WAIT);
    await shots(old, '13-old-device-cancelled');
    await asking.page.waitForSelector('#request-status:text("This request was cancelled")', WAIT);
    await asking.page.waitForSelector('#ask-again', WAIT);
    await shots(asking.page, '14-asking-cancelled');
    // The referents no longer see it.
    const r = workers[1].page;
    await r.click('#to-account');
    await r.click('button:text-is("Back")');
    await r.waitForSelector(`h1:text("Hello ${WORKERS[1].handle}")`, WAIT);
    await r.waitForLoadState('networkidle');
    assert.equal(await r.locator('#asks .ask').count(), 0);
    await asking.page.click('#ask-again');
    await asking.page.waitForSelector('#ask-submit', WAIT);
    await asking.ctx.context.close();
  });

  it('third run: a referent shown another key sees different words and refuses', async () => {
    const keygen = spawnSync('age-keygen', [], { encoding: 'utf8' });
    assert.equal(keygen.status, 0, keygen.stderr);
    const substitute = /age1[0-9a-z]+/.exec(keygen.stderr + keygen.stdout)[0];
    const asking = await askOnNewDevice(browser, url, PERSON.handle);
    const r = workers[1].page;
    // A test hook standing in for a lying server: the referent's answers carry another key.
    await workers[1].context.route('**/v1/recovery/asks**', async (route) => {
      const response = await route.fetch();
      const body = await response.json();
      const swap = (a) => ({ ...a, ephemeral_key: substitute });
      await route.fulfill({ response, json: Array.isArray(body) ? body.map(swap) : swap(body) });
    });
    await openAsk(r, PERSON.handle);
    const shown = await words(r, '#request-fingerprint');
    assert.notDeepEqual(shown, asking.words, 'a substituted key shows other words');
    await shots(r, '15-referent-words-differ');
    await r.click('#ask-refuse');
    await r.waitForSelector('#notice:text("You refused")', WAIT);
    await workers[1].context.unroute('**/v1/recovery/asks**');
    // The request goes on with the others; a refusal counts once.
    await asking.page.waitForSelector('#request-status:text("0 referents agreed so far")', WAIT);
    await asking.ctx.context.close();
  });

  it('a referent who leaves: the person and the other referents are told', async () => {
    // An operator disables the worker of the other structure (while the server runs).
    admin('account', 'disable', '--handle', WORKERS[2].handle, '--data', data);
    const old = person.page;
    await old.click('#to-account');
    await old.click('button:text-is("Back")');
    await old.waitForSelector('#referents-left-warning:not([hidden])', WAIT);
    assert.match(await text(old, '#referents-left-warning'), /You have 2 referents left who can help/);
    await shots(old, '16-person-referents-left');
    const r = workers[0].page;
    await r.click('#to-account');
    await r.click('button:text-is("Back")');
    await r.waitForSelector('#referent-of li', WAIT);
    assert.match(await text(r, '#referent-of'), new RegExp(`${PERSON.handle} has 2 referents left`));
    await shots(r, '17-referent-sees-referents-left');
  });
});
