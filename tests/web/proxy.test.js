// The web app through Debian's nginx with TLS, configured by the example of
// docs/deployment.md, in front of `coffre-server --trusted-proxy 127.0.0.1/32`, and under
// the server's Content-Security-Policy (these contexts do not bypass it, and run no axe).
// Run: `cd tests/web && node --test proxy.test.js` (needs nginx and openssl: `cargo xtask
// test` installs them; COFFRE_SERVER_BIN as for web.test.js).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, SERVER, WAIT, admin, freePort, login, download, png, startServer, stopServer, launchChromium, createBeneficiary } from './harness.js';

const NGINX = '/usr/sbin/nginx';
const WORKER = { handle: 'lea.relais', passphrase: 'la pluie tombe sur le port' };
const PERSON = { handle: 'yusuf.b', pin: '270418' };
const PHOTO = png('proxied photo', 20_000);
const PDF = Buffer.from('%PDF-1.4 a proxied attestation');

/** The nginx site of docs/deployment.md, moved onto test ports and files. */
function siteFromDocs({ tls, http, upstream, cert, key }) {
  const doc = readFileSync(join(ROOT, 'docs', 'deployment.md'), 'utf8');
  const blocks = [...doc.matchAll(/```nginx\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.equal(blocks.length, 1, 'docs/deployment.md has one nginx block');
  let site = blocks[0];
  const swap = (from, to) => {
    assert.ok(site.includes(from), `docs/deployment.md's nginx block no longer has "${from}"`);
    site = site.replaceAll(from, to);
  };
  swap('server 127.0.0.1:8080;', `server 127.0.0.1:${upstream};`);
  swap('listen 443 ssl http2;', `listen 127.0.0.1:${tls} ssl http2;`);
  swap('listen [::]:443 ssl http2;', '');
  swap('listen 80;', `listen 127.0.0.1:${http};`);
  swap('listen [::]:80;', '');
  swap('/etc/letsencrypt/live/coffre.example.org/fullchain.pem', cert);
  swap('/etc/letsencrypt/live/coffre.example.org/privkey.pem', key);
  return site;
}

/** nginx's main configuration around the site: foreground, files in `dir`. */
function nginxConf(dir, site) {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => {
    mkdirSync(join(dir, t), { recursive: true });
    return `${t}_temp_path ${join(dir, t)};`;
  });
  return [
    'daemon off;',
    // As root, nginx's workers would run as nobody and could not use the temp folder.
    process.getuid?.() === 0 ? 'user root;' : '',
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    'error_log stderr warn;',
    'events { worker_connections 256; }',
    'http {',
    `  access_log ${join(dir, 'access.log')};`,
    ...temp.map((t) => `  ${t}`),
    site,
    '}',
  ].join('\n');
}

/** An HTTPS request that trusts only the test's certificate. */
function https(url, { method = 'GET', headers = {}, body, ca }) {
  return new Promise((resolve, reject) => {
    const r = request(url, { method, headers, ca, servername: 'localhost' }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

/** Watches a page for CSP violations (DOM events and console reports) and page errors. */
async function watched(browser, locale) {
  const context = await browser.newContext({ locale, ignoreHTTPSErrors: true, acceptDownloads: true, viewport: { width: 360, height: 740 } });
  await context.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`));
  });
  const page = await context.newPage();
  const reports = [];
  page.on('console', (m) => {
    if (/content security policy|refused to|permissions.policy|unrecognized feature/i.test(m.text())) reports.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => reports.push(`page error: ${e.message}`));
  page.on('worker', (w) => w.on('console', (m) => /refused|content security policy/i.test(m.text()) && reports.push(`worker: ${m.text()}`)));
  const clean = async (where) => {
    assert.deepEqual(await page.evaluate(() => window.cspViolations), [], `CSP violations ${where}`);
    assert.deepEqual(reports, [], `console reports ${where}`);
  };
  return { context, page, clean };
}

const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob:; "
  + "frame-src blob:; worker-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

function assertHeaders(headers, what) {
  assert.equal(headers['content-security-policy'], CSP, `${what}: CSP`);
  assert.equal(headers['strict-transport-security'], 'max-age=31536000', `${what}: one HSTS header`);
  assert.equal(headers['referrer-policy'], 'no-referrer', what);
  assert.equal(headers['cross-origin-opener-policy'], 'same-origin', what);
  assert.equal(headers['cross-origin-resource-policy'], 'same-origin', what);
  assert.equal(headers['x-content-type-options'], 'nosniff', what);
  const features = headers['permissions-policy'].split(', ');
  assert.ok(features.includes('camera=(self)'), `${what}: ${headers['permissions-policy']}`);
  for (const f of features) assert.ok(f === 'camera=(self)' || f.endsWith('=()'), `${what}: ${f}`);
}

describe('the web app behind nginx with TLS, under the CSP', () => {
  let dir;
  let server;
  let nginx;
  let nginxLog = '';
  let base;
  let httpBase;
  let ca;
  let invite;
  let browser;
  let worker;
  let person;

  before(async () => {
    assert.ok(existsSync(SERVER), `build it first (${SERVER})`);
    assert.ok(existsSync(NGINX), 'nginx is missing: cargo xtask test installs the Debian package nginx');
    dir = mkdtempSync(join(tmpdir(), 'coffre-proxy-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    { encoding: 'utf8' });
    assert.equal(made.status, 0, `openssl: ${made.stderr}`);
    ca = readFileSync(cert);

    const data = join(dir, 'data');
    const org = admin('org', 'create', 'Relais Proxy', '--data', data);
    invite = admin('invite', 'create', '--org', org, '--data', data);
    let url;
    ({ server, url } = await startServer(dir, data, ['--trusted-proxy', '127.0.0.1/32']));
    const upstream = new URL(url).port;
    const [tls, http] = [await freePort(), await freePort()];
    writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, siteFromDocs({ tls, http, upstream, cert, key })));
    const checked = spawnSync(NGINX, ['-t', '-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], { encoding: 'utf8' });
    assert.equal(checked.status, 0, `nginx -t: ${checked.stderr}`);
    nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] });
    nginx.stderr.on('data', (d) => (nginxLog += d));
    base = `https://localhost:${tls}`;
    httpBase = `http://127.0.0.1:${http}`;
    for (let i = 0; ; i++) {
      if (nginx.exitCode !== null) throw new Error(`nginx exited: ${nginxLog}`);
      try {
        if ((await https(`${base}/healthz`, { ca })).status === 200) break;
      } catch (e) {
        if (i > 100) throw e;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    if (nginx && nginx.exitCode === null) {
      nginx.kill('SIGQUIT');
      await new Promise((r) => nginx.once('exit', r));
    }
    await stopServer(server);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('sends the headers through nginx and redirects plain HTTP', async () => {
    for (const path of ['/', '/pkg/index.js', '/v1/openapi.json', '/v1/nope']) {
      const r = await https(`${base}${path}`, { ca });
      assertHeaders(r.headers, path);
      if (path.startsWith('/v1/')) assert.equal(r.headers['cache-control'], 'no-store', path);
    }
    assert.equal((await https(`${base}/pkg/package-lock.json`, { ca })).status, 404);
    const plain = await fetch(`${httpBase}/`, { redirect: 'manual' });
    assert.equal(plain.status, 301);
    assert.match(plain.headers.get('location'), /^https:\/\//);
  });

  it('a worker registers and creates an account, under the CSP', async () => {
    worker = await watched(browser, 'en-US');
    const { page, clean } = worker;
    const main = await page.goto(`${base}/`);
    assertHeaders(main.headers(), 'the page as Chromium got it');
    await page.waitForSelector('h1:text("Open my vault")', WAIT);
    await page.click('#to-worker-register');
    await page.waitForSelector('h1:text("Create my social worker account")');
    await page.fill('#invite', invite);
    await page.fill('#handle', WORKER.handle);
    await page.fill('#new-passphrase', WORKER.passphrase);
    await page.fill('#confirm-passphrase', WORKER.passphrase);
    await page.click('#worker-register-submit');
    await page.waitForSelector('#notice:text("Your account is ready")', WAIT);
    await login(page, WORKER, WORKER.passphrase, `h1:text("Hello ${WORKER.handle}")`);
    // The safety words' QR code is an SVG drawn into the page: allowed by the policy.
    await page.waitForSelector('#my-fingerprint svg[role="img"]', WAIT);

    await createBeneficiary(page, PERSON);
    await page.waitForSelector('#recovery-qr svg[role="img"]');
    await page.click('#kit-done');
    await page.waitForSelector(`h1:text("Hello ${WORKER.handle}")`);
    await clean('in the worker\'s flows');
  });

  it('the person logs in, uploads in a Web Worker, views and downloads, under the CSP', async () => {
    person = await watched(browser, 'en-US');
    const { page, clean } = person;
    const workers = [];
    page.on('worker', (w) => workers.push(w.url()));
    await page.goto(`${base}/`);
    await page.waitForSelector('h1:text("Open my vault")', WAIT);
    await login(page, PERSON, PERSON.pin, '#vault-empty');
    for (const f of [
      { input: '#camera', file: 'photo.png', mimeType: 'image/png', buffer: PHOTO, name: 'Photo titre', category: 'identity' },
      { input: '#file', file: 'attestation.pdf', mimeType: 'application/pdf', buffer: PDF, name: 'Attestation', category: 'housing' },
    ]) {
      await page.click('#add-document');
      await page.waitForSelector('h1:text("Add a paper")');
      await page.setInputFiles(f.input, { name: f.file, mimeType: f.mimeType, buffer: f.buffer });
      await page.waitForSelector(`#file-chosen:text("${f.file}")`);
      await page.fill('#doc-name', f.name);
      await page.check(`#category-${f.category}`);
      await page.click('#upload-submit');
      await page.waitForSelector('#notice:text("Saved. Only you can open it.")', WAIT);
      await page.waitForSelector(`button.doc:has-text("${f.name}")`, WAIT);

      await page.click(`button.doc:has-text("${f.name}")`);
      await page.waitForSelector(`h1:text("${f.name}")`);
      const got = await download(page, '#download');
      assert.ok(got.bytes.equals(f.buffer), `downloaded bytes of ${f.name}`);
      await page.click('#view');
      if (f.mimeType === 'image/png') {
        // A blob: image, decrypted in the page.
        await page.waitForFunction(() => document.getElementById('preview-img')?.naturalWidth === 64, null, WAIT);
      } else {
        // A blob: frame.
        await page.waitForSelector(`iframe#preview-pdf[title="${f.name}"]`, WAIT);
      }
      await page.click('#back');
      await page.waitForSelector('h1:text("My papers")');
    }
    assert.ok(workers.some((u) => u === `${base}/pkg/worker.js`), `encryption ran in a Web Worker (${workers})`);
    await clean('in the person\'s flows');
  });

  it('gives each client behind the proxy its own budget', async () => {
    // nginx appends the address it saw (127.0.0.1, itself a trusted proxy here) to the
    // X-Forwarded-For a client sent, so on loopback the address this client put there
    // plays the part of the client a proxy in front would have named.
    const attempt = (address) => https(`${base}/v1/registrations/start`, {
      method: 'POST',
      ca,
      headers: { 'content-type': 'application/json', 'x-forwarded-for': address },
      body: JSON.stringify({ registration_request: 'AAAA' }),
    });
    const first = await attempt('198.51.100.1');
    assert.notEqual(first.status, 429);
    let spent = 1;
    let last = first;
    while (last.status !== 429 && spent < 100) {
      last = await attempt('198.51.100.1');
      spent += 1;
    }
    assert.equal(last.status, 429, 'the budget runs out');
    assert.equal(spent, 31, 'the registration budget is 30 a minute');
    assert.equal(last.headers['retry-after'], '60');
    assert.equal((await attempt('198.51.100.2')).status, first.status, 'another client still has its budget');
    // The browser's client (127.0.0.1 itself) has its own too: the person can still log in.
    const { page, clean } = person;
    await page.click('#logout');
    await page.waitForSelector('#notice:text("You are logged out")', WAIT);
    await login(page, PERSON, PERSON.pin, 'h1:text("My papers")');
    await clean('after the budgets');
  });

  it('would notice a violation: the watch is not blind', async () => {
    const probe = await watched(browser, 'en-US');
    await probe.page.goto(`${base}/`);
    await probe.page.waitForSelector('h1:text("Open my vault")', WAIT);
    await probe.page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.inlineRan = true';
      document.head.append(s);
    });
    await probe.page.waitForFunction(() => window.cspViolations.length > 0, null, WAIT);
    assert.equal(await probe.page.evaluate(() => window.inlineRan), undefined, 'an inline script ran');
    await assert.rejects(probe.clean('with an inline script'), /CSP violations/);
    await probe.context.close();
  });
});
