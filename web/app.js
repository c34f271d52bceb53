// Coffre web app: screens built with the DOM, no framework, no build step. Strings come
// from i18n/<lang>.js only. A screen is a function returning its content; switching the
// language rebuilds the screen and puts back everything typed or chosen.

import * as vault from './vault.js';
import { ApiError } from './api.js';

const LANGS = { fr: 'Français', en: 'English' };
const LANG_KEY = 'coffre.lang';
const HANDLE_RE = /^[a-z0-9._-]{3,64}$/;

let S = {}; // strings of the current language
let current = null; // { screen, args, error, notice }
const main = document.getElementById('main');

// ---------------------------------------------------------------- language

function pickLanguage() {
  let saved = null;
  try {
    saved = localStorage.getItem(LANG_KEY);
  } catch {
    // storage disabled: use the browser's language
  }
  if (saved in LANGS) return saved;
  for (const l of navigator.languages ?? [navigator.language]) {
    const base = String(l).toLowerCase().split('-')[0];
    if (base in LANGS) return base;
  }
  return 'en';
}

async function setLanguage(lang, remember) {
  S = (await import(`./i18n/${lang}.js`)).default;
  document.documentElement.lang = S.lang;
  document.documentElement.dir = S.dir;
  document.title = S.appName;
  if (remember) {
    try {
      localStorage.setItem(LANG_KEY, lang);
    } catch {
      // not remembered: fine
    }
  }
  renderBar();
}

/** `{name}` placeholders filled from `vars`. */
function t(key, vars = {}) {
  return (S[key] ?? key).replace(/\{(\w+)\}/g, (_, k) => vars[k] ?? '');
}

// ---------------------------------------------------------------- DOM helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c);
  return el;
}

/** A labelled input with an optional hint; `attrs` go on the <input>. */
function field(id, labelKey, attrs = {}, hintKey = null) {
  const hint = hintKey ? h('p', { class: 'hint', id: `${id}-hint`, text: t(hintKey) }) : null;
  const input = h('input', { id, name: id, type: 'text', 'aria-describedby': hint ? `${id}-hint` : null, ...attrs });
  return h('div', { class: 'field' }, h('label', { for: id, text: t(labelKey) }), hint, input);
}

/** A secret input with a Show/Hide button (people type PINs on small keyboards). */
function secretField(id, labelKey, attrs = {}, hintKey = null) {
  const f = field(id, labelKey, { type: 'password', spellcheck: 'false', autocapitalize: 'none', ...attrs }, hintKey);
  const input = f.querySelector('input');
  const toggle = h('button', {
    type: 'button', class: 'secondary', 'aria-controls': id, 'aria-pressed': 'false', text: t('show'),
    onclick: () => {
      const shown = input.type === 'password';
      input.type = shown ? 'text' : 'password';
      toggle.setAttribute('aria-pressed', String(shown));
      toggle.textContent = t(shown ? 'hide' : 'show');
    },
  });
  const wrap = h('div', { class: 'secret' });
  input.replaceWith(wrap);
  wrap.append(input, toggle);
  return f;
}

const alertBox = () => h('p', { class: 'error', id: 'form-error', role: 'alert' });
const noticeBox = () => h('p', { class: 'notice', id: 'notice', role: 'status' });

/** Shows an error in plain words and puts the focus on the field to fix, if any. */
function showError(key, fieldId = null) {
  current.error = key;
  const box = document.getElementById('form-error');
  if (box) box.textContent = t(key);
  for (const el of main.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const input = fieldId && document.getElementById(fieldId);
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    input.select?.();
  } else box?.focus?.();
}

function clearError() {
  current.error = null;
  const box = document.getElementById('form-error');
  if (box) box.textContent = '';
  for (const el of main.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

/** Runs `work` with the form's buttons disabled and a "please wait" status. */
async function busy(form, work) {
  const buttons = [...form.querySelectorAll('button')];
  const status = form.querySelector('.status');
  buttons.forEach((b) => (b.disabled = true));
  form.setAttribute('aria-busy', 'true');
  if (status) status.textContent = t('working');
  try {
    return await work();
  } finally {
    buttons.forEach((b) => (b.disabled = false));
    form.removeAttribute('aria-busy');
    if (status) status.textContent = '';
  }
}

/**
 * An error from a step: a plain-words key; anything unexpected becomes errUnknown. An
 * expired session drops the keys and goes back to the login screen.
 */
function keyOf(e) {
  const key = e instanceof ApiError ? e.key : 'errUnknown';
  if (key === 'errSession' && vault.currentAccount()) {
    vault.logout().finally(() => show(loginScreen, {}, { notice: 'errSession' }));
  }
  return key;
}

// ---------------------------------------------------------------- rendering

/** Shows a screen; `keep` puts back the values of the previous one (language switch). */
function show(screen, args = {}, { keep = false, notice = null } = {}) {
  const saved = keep ? snapshot() : null;
  const error = keep ? current?.error : null;
  current = { screen, args, error, notice: keep ? current?.notice : notice };
  main.replaceChildren(screen(args));
  if (saved) restore(saved);
  const n = document.getElementById('notice');
  if (n && current.notice) n.textContent = t(current.notice);
  if (current.error) {
    const box = document.getElementById('form-error');
    if (box) box.textContent = t(current.error);
  }
  renderBar();
  if (!keep) main.querySelector('h1')?.focus();
  main.dispatchEvent(new CustomEvent('coffre:screen', { bubbles: true }));
}

function snapshot() {
  const values = {};
  for (const el of main.querySelectorAll('input, select, textarea')) {
    if (el.type === 'file') continue;
    values[el.id || el.name + ':' + el.value] =
      el.type === 'checkbox' || el.type === 'radio' ? el.checked : el.value;
  }
  return values;
}

function restore(values) {
  for (const el of main.querySelectorAll('input, select, textarea')) {
    const key = el.id || el.name + ':' + el.value;
    if (!(key in values)) continue;
    if (el.type === 'checkbox' || el.type === 'radio') el.checked = values[key];
    else el.value = values[key];
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }
}

function renderBar() {
  const langs = document.getElementById('langs');
  langs.replaceChildren(
    ...Object.entries(LANGS).map(([code, name]) =>
      h('button', {
        type: 'button', lang: code, 'aria-pressed': String(S.lang === code), text: name,
        onclick: async () => {
          if (S.lang === code) return;
          await setLanguage(code, true);
          if (current) show(current.screen, current.args, { keep: true });
          langs.querySelector(`[lang="${code}"]`)?.focus();
        },
      }),
    ),
  );
  langs.setAttribute('aria-label', t('chooseLanguage'));
  const session = document.getElementById('session');
  session.replaceChildren(
    vault.currentAccount()
      ? h('button', { type: 'button', id: 'logout', text: t('logout'), onclick: logout })
      : '',
  );
}

async function logout() {
  await vault.logout();
  show(loginScreen, {}, { notice: 'loggedOut' });
}

function home(account) {
  if (account.role === 'worker') show(workerHome);
  else show(vaultScreen);
}

// ---------------------------------------------------------------- screens

function loginScreen() {
  const form = h('form', { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    const handle = form.handle.value.trim().toLowerCase();
    const pass = form.passphrase.value;
    if (!handle) return showError('errRequired', 'handle');
    if (!pass) return showError('errRequired', 'passphrase');
    try {
      const account = await busy(form, async () => {
        await vault.ready();
        return vault.login(handle, pass);
      });
      home(account);
    } catch (e) {
      const key = keyOf(e);
      showError(key, key === 'errWrongLogin' ? 'passphrase' : null);
    }
  } },
    field('handle', 'handle', { autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true }),
    secretField('passphrase', 'passphrase', { autocomplete: 'current-password', required: true }),
    alertBox(),
    h('button', { type: 'submit', id: 'login-submit', text: t('loginButton') }),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('loginTitle') }),
    h('p', { class: 'lead', text: t('tagline') }),
    noticeBox(),
    form,
    h('button', { type: 'button', class: 'link', id: 'to-worker-register', text: t('iAmWorker'), onclick: () => show(workerRegisterScreen) }),
  );
}

function workerRegisterScreen() {
  const form = h('form', { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    const invite = form.invite.value.trim();
    const handle = form.handle.value.trim().toLowerCase();
    const pass = form['new-passphrase'].value;
    if (!invite) return showError('errRequired', 'invite');
    if (!HANDLE_RE.test(handle)) return showError('errHandle', 'handle');
    if (pass.length < 12) return showError('errWorkerPassphrase', 'new-passphrase');
    if (pass !== form['confirm-passphrase'].value) return showError('errMismatch', 'confirm-passphrase');
    try {
      await busy(form, async () => {
        await vault.ready();
        await vault.registerWorker(invite, handle, pass);
      });
    } catch (e) {
      const key = keyOf(e);
      return showError(key, { errInvite: 'invite', errHandleTaken: 'handle' }[key] ?? null);
    }
    show(loginScreen, {}, { notice: 'workerCreated' });
    document.getElementById('handle').value = handle;
    document.getElementById('passphrase').focus();
  } },
    field('invite', 'inviteCode', { autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', required: true }, 'inviteHint'),
    field('handle', 'handle', { autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true }, 'handleHint'),
    secretField('new-passphrase', 'newPassphrase', { autocomplete: 'new-password', required: true }, 'workerPassphraseHint'),
    secretField('confirm-passphrase', 'confirmPassphrase', { autocomplete: 'new-password', required: true }),
    alertBox(),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: 'worker-register-submit', text: t('createMyAccount') }),
      h('button', { type: 'button', class: 'secondary', text: t('back'), onclick: () => show(loginScreen) }),
    ),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  return h('div', { class: 'stack' }, h('h1', { tabindex: '-1', text: t('workerRegisterTitle') }), form);
}

function workerHome() {
  const account = vault.currentAccount();
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('workerHomeTitle', { handle: account.handle }) }),
    h('p', { class: 'lead', text: t('workerHomeIntro') }),
    noticeBox(),
    h('button', { type: 'button', id: 'create-beneficiary', text: t('createBeneficiary'), onclick: () => show(createBeneficiaryScreen) }),
  );
}

const EASY = new Set(['password', 'motdepasse', 'azertyuiop', 'qwertyuiop', 'azerty123', 'password1', 'iloveyou', 'jetaime']);

/** How hard a secret is to guess, in plain words: { key, level 0-4, ok }. */
export function strength(kind, value) {
  if (!value) return { key: 'strengthEmpty', level: 0, ok: false };
  if (kind === 'pin') {
    if (!/^[0-9]+$/.test(value)) return { key: 'strengthNotDigits', level: 1, ok: false };
    if (value.length < 6) return { key: 'strengthTooShort', level: 1, ok: false };
    const d = [...value].map(Number);
    const step = d[1] - d[0];
    const run = Math.abs(step) <= 1 && d.every((x, i) => i === 0 || x - d[i - 1] === step);
    const repeats = /^(.{1,3})\1+$/.test(value);
    if (run || repeats) return { key: 'strengthTooEasy', level: 1, ok: false };
    if (value.length < 8) return { key: 'strengthOk', level: 2, ok: true };
    return value.length < 10 ? { key: 'strengthGood', level: 3, ok: true } : { key: 'strengthStrong', level: 4, ok: true };
  }
  if (value.length < 8) return { key: 'strengthTooShort', level: 1, ok: false };
  if (EASY.has(value.toLowerCase()) || /^(.)\1+$/.test(value) || /^[0-9]+$/.test(value) && value.length < 10) {
    return { key: 'strengthTooEasy', level: 1, ok: false };
  }
  const words = value.trim().split(/\s+/).length;
  if (value.length >= 20 || (words >= 4 && value.length >= 16)) return { key: 'strengthStrong', level: 4, ok: true };
  if (value.length >= 12) return { key: 'strengthGood', level: 3, ok: true };
  return { key: 'strengthOk', level: 2, ok: true };
}

function createBeneficiaryScreen() {
  const kindOf = () => (form.querySelector('input[name="kind"]:checked')?.value ?? 'passphrase');
  const meterText = h('strong', { id: 'strength-value' });
  const meter = h('div', { class: 'meter', 'aria-hidden': 'true' }, h('span'));
  const update = () => {
    const kind = kindOf();
    const secret = form.secret;
    const s = strength(kind, secret.value);
    meterText.textContent = t(s.key);
    meter.dataset.level = String(s.level);
    const pin = kind === 'pin';
    secret.setAttribute('inputmode', pin ? 'numeric' : 'text');
    form.querySelector('label[for="secret"]').textContent = t(pin ? 'theirPin' : 'theirPassphrase');
    form.querySelector('label[for="confirm-secret"]').textContent = t(pin ? 'confirmTheirPin' : 'confirmTheirPassphrase');
    document.getElementById('secret-hint').textContent = t(pin ? 'pinHint' : 'passphraseHint');
  };
  const choice = (value, key, checked) =>
    h('label', { class: 'choice' }, h('input', { type: 'radio', name: 'kind', id: `kind-${value}`, value, checked, onchange: update }), t(key));
  const form = h('form', { novalidate: true, oninput: update, onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    const handle = form.handle.value.trim().toLowerCase();
    const secret = form.secret.value;
    if (!HANDLE_RE.test(handle)) return showError('errHandle', 'handle');
    const s = strength(kindOf(), secret);
    if (!secret) return showError('errRequired', 'secret');
    if (!s.ok) return showError(s.key === 'strengthNotDigits' || s.key === 'strengthTooShort' ? 'errTooWeak' : 'errTooWeak', 'secret');
    if (secret !== form['confirm-secret'].value) return showError('errMismatch', 'confirm-secret');
    if (!form.consent.checked) return showError('errConsent', 'consent');
    let code;
    try {
      code = await busy(form, async () => {
        await vault.ready();
        return vault.registerBeneficiary(handle, secret, true);
      });
    } catch (e) {
      const key = keyOf(e);
      return showError(key, key === 'errHandleTaken' ? 'handle' : null);
    }
    show(recoveryKitScreen, { handle, code });
  } },
    field('handle', 'theirHandle', { autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', required: true }, 'handleHint'),
    h('fieldset', {},
      h('legend', { text: t('secretKind') }),
      choice('passphrase', 'kindPassphrase', true),
      choice('pin', 'kindPin', false),
    ),
    secretField('secret', 'theirPassphrase', { autocomplete: 'new-password', required: true, 'aria-describedby': 'secret-hint strength' }, 'passphraseHint'),
    h('p', { id: 'strength', class: 'hint', 'aria-live': 'polite' }, t('strength'), ' ', meterText),
    meter,
    secretField('confirm-secret', 'confirmTheirPassphrase', { autocomplete: 'new-password', required: true }),
    h('label', { class: 'choice' }, h('input', { type: 'checkbox', id: 'consent', name: 'consent', required: true }), t('consent')),
    alertBox(),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: 'create-submit', text: t('createAccount') }),
      h('button', { type: 'button', class: 'secondary', text: t('back'), onclick: () => show(workerHome) }),
    ),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  queueMicrotask(update);
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('createTitle') }),
    h('p', { class: 'lead', text: t('createIntro') }),
    form,
  );
}

function recoveryKitScreen({ handle, code }) {
  const qr = h('div', { class: 'qr', id: 'recovery-qr' });
  // The QR encoder loads only here, so it costs nothing on the first screen.
  import('./vendor/qr.js')
    .then(({ encodeQR }) => {
      qr.innerHTML = encodeQR(code, 'svg', { ecc: 'medium', border: 2 });
      const svg = qr.querySelector('svg');
      svg.setAttribute('role', 'img');
      svg.setAttribute('aria-label', t('kitQrLabel'));
    })
    .catch(() => qr.replaceChildren(h('p', { class: 'hint', text: t('kitQrMissing') })));
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('kitTitle') }),
    h('p', { text: t('kitForHandle', { handle }) }),
    h('p', { class: 'lead', text: t('kitIntro', { handle }) }),
    h('h2', { text: t('kitCodeLabel') }),
    // Groups never break across lines; <wbr> lets the line break after a dash.
    h('p', { class: 'code', id: 'recovery-code', translate: 'no' },
      code.split('-').flatMap((g, i) => [i ? '-' : null, i ? h('wbr') : null, h('span', { text: g })])),
    qr,
    h('ol', {}, h('li', { text: t('kitStep1') }), h('li', { text: t('kitStep2', { handle }) }), h('li', { text: t('kitStep3') })),
    h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'print', text: t('kitPrint'), onclick: () => window.print() }),
      h('button', { type: 'button', class: 'secondary', id: 'kit-done', text: t('kitDone'), onclick: () => show(workerHome) }),
    ),
  );
}

function vaultScreen() {
  const list = h('div', { id: 'documents', 'aria-busy': 'true' }, h('p', { class: 'status', text: t('loading') }));
  const box = alertBox();
  vault.listDocuments().then(
    (docs) => {
      list.removeAttribute('aria-busy');
      if (docs.length === 0) return list.replaceChildren(h('p', { id: 'vault-empty', text: t('vaultEmpty') }));
      const groups = vault.CATEGORIES.map((cat) => [cat, docs.filter((d) => d.category === cat)]).filter(([, d]) => d.length);
      list.replaceChildren(
        ...groups.map(([cat, items]) =>
          h('section', { 'aria-labelledby': `cat-${cat}` },
            h('h2', { id: `cat-${cat}`, text: t(`cat_${cat}`) }),
            h('ul', { class: 'docs' }, items.map((doc) => h('li', {}, docButton(doc)))),
          ),
        ),
      );
    },
    (e) => {
      list.removeAttribute('aria-busy');
      list.replaceChildren();
      box.textContent = t(keyOf(e));
    },
  );
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('vaultTitle') }),
    noticeBox(),
    box,
    h('button', { type: 'button', id: 'add-document', text: t('addDocument'), onclick: () => show(uploadScreen) }),
    list,
  );
}

const EXTENSIONS = { 'image/jpeg': '.jpg', 'image/png': '.png', 'image/webp': '.webp', 'image/heic': '.heic', 'application/pdf': '.pdf' };

/** The document's name with the extension its type calls for (so phones can open it). */
function fileName(doc) {
  const ext = EXTENSIONS[doc.mimeType] ?? '';
  return ext && !doc.name.toLowerCase().endsWith(ext) ? doc.name + ext : doc.name;
}

function docButton(doc) {
  const b = h('button', { type: 'button', class: 'doc', 'data-id': doc.id, text: doc.name, 'aria-label': t('download', { name: doc.name }),
    onclick: async () => {
      b.disabled = true;
      b.textContent = `${doc.name} — ${t('decrypting')}`;
      try {
        const blob = await vault.openDocument(doc);
        const url = URL.createObjectURL(blob);
        const a = h('a', { href: url, download: fileName(doc) });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
      } catch (e) {
        const box = document.getElementById('form-error');
        if (box) box.textContent = t(keyOf(e));
      } finally {
        b.disabled = false;
        b.textContent = doc.name;
      }
    } });
  return b;
}

function uploadScreen() {
  const progress = h('progress', { id: 'upload-progress', max: '1', value: '0', hidden: true, 'aria-labelledby': 'upload-status' });
  const status = h('p', { class: 'status', id: 'upload-status', 'aria-live': 'polite' });
  const form = h('form', { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    const file = form.file.files[0];
    const name = form['doc-name'].value.trim();
    const category = form.querySelector('input[name="category"]:checked')?.value ?? 'other';
    if (!file) return showError('errNoFile', 'file');
    if (!name) return showError('errRequired', 'doc-name');
    const buttons = [...form.querySelectorAll('button')];
    buttons.forEach((b) => (b.disabled = true));
    progress.hidden = false;
    try {
      await vault.ready();
      await vault.uploadDocument(file, name, category, (step, fraction) => {
        status.textContent = t(step);
        progress.value = fraction;
      });
    } catch (e) {
      progress.hidden = true;
      status.textContent = '';
      return showError(keyOf(e));
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
    show(vaultScreen, {}, { notice: 'uploaded' });
  } },
    h('div', { class: 'field' },
      h('label', { for: 'file', text: t('pickFile') }),
      h('input', { type: 'file', id: 'file', name: 'file', accept: 'image/*,application/pdf', onchange: () => {
        const f = form.file.files[0];
        if (f && !form['doc-name'].value) form['doc-name'].value = f.name.replace(/\.[^.]+$/, '');
      } }),
    ),
    field('doc-name', 'docName', { autocomplete: 'off', maxlength: '200', required: true }, 'docNameHint'),
    h('fieldset', {},
      h('legend', { text: t('category') }),
      vault.CATEGORIES.map((cat, i) =>
        h('label', { class: 'choice' }, h('input', { type: 'radio', name: 'category', id: `category-${cat}`, value: cat, checked: i === 0 }), t(`cat_${cat}`)),
      ),
    ),
    alertBox(),
    progress,
    status,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: 'upload-submit', text: t('save') }),
      h('button', { type: 'button', class: 'secondary', text: t('cancel'), onclick: () => show(vaultScreen) }),
    ),
  );
  return h('div', { class: 'stack' }, h('h1', { tabindex: '-1', text: t('addTitle') }), form);
}

// ---------------------------------------------------------------- start

await setLanguage(pickLanguage(), false);
show(loginScreen);
// Fetch and compile the wasm while the person types.
vault.ready().catch(() => {
  if (current?.screen === loginScreen) showError('errLoad');
});
