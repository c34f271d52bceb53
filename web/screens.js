// Every screen after the first: workers, beneficiaries' vault, sharing, links, account
// care. Loaded by app.js once the person moves on from the login screen.

import * as vault from './vault.js';
import * as rs from './recovery-screens.js';
import { sessionsScreen } from './sessions.js'; // loads the later screens' strings
import { fingerprintBox } from './safety.js';
import * as intake from './intake.js';
import * as transfer from './transfer.js';
import * as photos from './photos.js';
import { ApiError } from './api.js';
import {
  h, t, date, size, field, secretField, select, alertBox, noticeBox, showError, clearError, showNotice,
  busy, keyOf, show, onLeave, hooks, drawQr, saveBlob, HANDLE_RE, main, current,
} from './ui.js';

const DAY = 86_400;
const now = () => Math.floor(Date.now() / 1000);
const percent = (done, total) => `${Math.floor((total ? Math.min(done / total, 1) : 1) * 100)} %`;

export { askRecoveryScreen } from './recovery-screens.js';

// ---------------------------------------------------------------- secrets

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

/**
 * Choosing a new secret: passphrase or PIN, strength in plain words, typed twice.
 * `who` is 'their' (a worker types for the person beside them) or 'new' (one's own).
 * Returns { nodes, update, check(form) → secret or null after showing the error }.
 */
function secretChooser(who, { pin = true } = {}) {
  const k = (kind, confirm) => `${confirm ? 'confirm' : ''}${who === 'their' ? (confirm ? 'Their' : 'their') : confirm ? 'New' : 'new'}${kind === 'pin' ? 'Pin' : 'Passphrase'}`;
  const kindOf = () => document.querySelector('input[name="kind"]:checked')?.value ?? 'passphrase';
  const meterText = h('strong', { id: 'strength-value' });
  const meter = h('div', { class: 'meter', 'aria-hidden': 'true' }, h('span'));
  const update = () => {
    const kind = kindOf();
    const secret = document.getElementById('secret');
    if (!secret) return;
    const s = strength(kind, secret.value);
    meterText.textContent = t(s.key);
    meter.dataset.level = String(s.level);
    secret.setAttribute('inputmode', kind === 'pin' ? 'numeric' : 'text');
    document.querySelector('label[for="secret"]').textContent = t(k(kind, false));
    document.querySelector('label[for="confirm-secret"]').textContent = t(k(kind, true));
    document.getElementById('secret-hint').textContent = t(kind === 'pin' ? 'pinHint' : 'passphraseHint');
  };
  const choice = (value, key, checked) =>
    h('label', { class: 'choice' }, h('input', { type: 'radio', name: 'kind', id: `kind-${value}`, value, checked, onchange: update }), t(key));
  const nodes = [
    pin && h('fieldset', {},
      h('legend', { text: t(who === 'their' ? 'secretKind' : 'mySecretKind') }),
      choice('passphrase', 'kindPassphrase', true),
      choice('pin', 'kindPin', false),
    ),
    secretField('secret', k('passphrase', false), { autocomplete: 'new-password', required: true, 'aria-describedby': 'secret-hint strength' }, 'passphraseHint'),
    h('p', { id: 'strength', class: 'hint', 'aria-live': 'polite' }, t('strength'), ' ', meterText),
    meter,
    secretField('confirm-secret', k('passphrase', true), { autocomplete: 'new-password', required: true }),
  ];
  const check = (form) => {
    const secret = form.secret.value;
    if (!secret) return showError('errRequired', 'secret'), null;
    if (!strength(kindOf(), secret).ok) return showError('errTooWeak', 'secret'), null;
    if (!pin && secret.length < 12) return showError('errWorkerPassphrase', 'secret'), null;
    if (secret !== form['confirm-secret'].value) return showError('errMismatch', 'confirm-secret'), null;
    return secret;
  };
  queueMicrotask(update);
  return { nodes, update, check };
}

// ---------------------------------------------------------------- workers

export function workerRegisterScreen() {
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
    show(hooks.loginScreen, {}, { notice: 'workerCreated' });
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
      h('button', { type: 'button', class: 'secondary', text: t('back'), onclick: () => show(hooks.loginScreen) }),
    ),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  return h('div', { class: 'stack' }, h('h1', { tabindex: '-1', text: t('workerRegisterTitle') }), form);
}

export function workerHome() {
  const account = vault.currentAccount();
  const list = h('div', { id: 'shared', 'aria-busy': 'true' }, h('p', { class: 'status', text: t('loading') }));
  vault.listShared().then(
    (docs) => {
      list.removeAttribute('aria-busy');
      list.replaceChildren(docs.length
        ? h('ul', { class: 'docs' }, docs.map((doc) => h('li', {}, docButton(doc))))
        : h('p', { id: 'shared-empty', text: t('sharedEmpty') }));
    },
    (e) => {
      list.removeAttribute('aria-busy');
      list.replaceChildren();
      showError(keyOf(e));
    },
  );
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('workerHomeTitle', { handle: account.handle }) }),
    h('p', { class: 'lead', text: t('workerHomeIntro') }),
    noticeBox(),
    alertBox(),
    h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'create-beneficiary', text: t('createBeneficiary'), onclick: () => show(createBeneficiaryScreen) }),
      h('button', { type: 'button', class: 'secondary', id: 'to-unlock', text: t('unlockAccount'), onclick: () => show(unlockScreen) }),
      h('button', { type: 'button', class: 'secondary', id: 'to-account', text: t('myAccount'), onclick: () => show(accountScreen) }),
    ),
    rs.recoveryWarning(),
    rs.referentsNotice(),
    rs.asksList(),
    rs.referentOfList(),
    h('h2', { text: t('sharedWithMe') }),
    list,
    h('h2', { text: t('mySafetyWords') }),
    h('p', { class: 'hint', text: t('mySafetyWordsHint') }),
    fingerprintBox(vault.myFingerprint(), 'my-fingerprint'),
  );
}

function createBeneficiaryScreen() {
  const chooser = secretChooser('their');
  const form = h('form', { novalidate: true, oninput: () => chooser.update(), onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    const handle = form.handle.value.trim().toLowerCase();
    if (!HANDLE_RE.test(handle)) return showError('errHandle', 'handle');
    const secret = chooser.check(form);
    if (secret === null) return;
    if (!form.consent.checked) return showError('errConsent', 'consent');
    let code;
    try {
      code = await busy(form, async () => {
        await vault.ready();
        return vault.registerBeneficiary(handle, secret, true, form['be-referent'].checked);
      });
    } catch (e) {
      const key = keyOf(e);
      return showError(key, key === 'errHandleTaken' ? 'handle' : null);
    }
    show(recoveryKitScreen, { handle, code });
  } },
    field('handle', 'theirHandle', { autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', required: true }, 'handleHint'),
    chooser.nodes,
    h('label', { class: 'choice' }, h('input', { type: 'checkbox', id: 'consent', name: 'consent', required: true }), t('consent')),
    h('label', { class: 'choice' }, h('input', { type: 'checkbox', id: 'be-referent', name: 'be-referent', checked: true }), t('beTheirReferent')),
    alertBox(),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: 'create-submit', text: t('createAccount') }),
      h('button', { type: 'button', class: 'secondary', text: t('back'), onclick: () => show(workerHome) }),
    ),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('createTitle') }),
    h('p', { class: 'lead', text: t('createIntro') }),
    form,
  );
}

/**
 * The recovery kit to print: the code, what it is for, and what losing both the secret
 * and the paper means. `own`: the person's own new kit (not one a worker hands over).
 */
function recoveryKitScreen({ handle, code, own = false, recovered = false }) {
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('kitTitle') }),
    noticeBox(),
    recovered && h('p', { class: 'notice', id: 'recovered-notice', text: t('recoveredByReferents') }),
    h('p', { id: 'kit-service', text: t('kitService', { url: location.origin }) }),
    h('p', { text: t('kitForHandle', { handle }) }),
    h('p', { class: 'lead', text: t(own ? 'kitOwnIntro' : 'kitIntro', { handle }) }),
    h('h2', { text: t('kitCodeLabel') }),
    // Groups never break across lines; <wbr> lets the line break after a dash.
    h('p', { class: 'code', id: 'recovery-code', translate: 'no' },
      code.split('-').flatMap((g, i) => [i ? '-' : null, i ? h('wbr') : null, h('span', { text: g })])),
    drawQr(h('div', { class: 'qr', id: 'recovery-qr' }), code, 'kitQrLabel'),
    h('ol', {}, h('li', { text: t('kitStep1') }), h('li', { text: t(own ? 'kitOwnStep2' : 'kitStep2', { handle }) }), h('li', { text: t('kitStep3') })),
    h('p', { id: 'kit-lose-both', text: t('kitLoseBoth') }),
    h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'print', text: t('kitPrint'), onclick: () => window.print() }),
      h('button', { type: 'button', class: 'secondary', id: 'kit-done', text: t(own ? 'kitOwnDone' : 'kitDone'), onclick: () => show(!vault.currentAccount() ? hooks.loginScreen : own ? homeScreen() : workerHome) }),
    ),
  );
}

/** Story 8: a worker unlocks an account of their organisation. */
function unlockScreen() {
  const form = h('form', { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    const handle = form.handle.value.trim().toLowerCase();
    if (!HANDLE_RE.test(handle)) return showError('errHandle', 'handle');
    try {
      await busy(form, () => vault.unlockAccount(handle));
    } catch (e) {
      const key = keyOf(e);
      return showError(key, key === 'errNoSuchAccount' || key === 'errOtherOrg' ? 'handle' : null);
    }
    show(workerHome, {}, { notice: 'unlocked' });
  } },
    field('handle', 'theirHandle', { autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', required: true }),
    alertBox(),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: 'unlock-submit', text: t('unlockButton') }),
      h('button', { type: 'button', class: 'secondary', text: t('back'), onclick: () => show(workerHome) }),
    ),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('unlockTitle') }),
    h('p', { class: 'lead', text: t('unlockIntro') }),
    form,
  );
}

// ---------------------------------------------------------------- the vault

const homeScreen = () => (vault.currentAccount()?.role === 'worker' ? workerHome : vaultScreen);

/** Folds case and accents, so "Carte" finds "carte d'identité" and "identite" too. */
const fold = (s) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();

export function vaultScreen() {
  const list = h('div', { id: 'documents', 'aria-busy': 'true' }, h('p', { class: 'status', text: t('loading') }));
  const count = h('p', { class: 'hint', id: 'search-count', 'aria-live': 'polite' });
  let docs = [];
  const render = () => {
    const q = fold(document.getElementById('search')?.value.trim() ?? '');
    const found = q ? docs.filter((d) => fold(d.name).includes(q)) : docs;
    count.textContent = q ? t('searchCount', { count: found.length }) : '';
    if (docs.length === 0) return list.replaceChildren(h('p', { id: 'vault-empty', text: t('vaultEmpty') }));
    if (found.length === 0) return list.replaceChildren(h('p', { id: 'search-empty', text: t('searchEmpty') }));
    const groups = vault.CATEGORIES.map((cat) => [cat, found.filter((d) => d.category === cat)]).filter(([, d]) => d.length);
    list.replaceChildren(
      ...groups.map(([cat, items]) =>
        h('section', { 'aria-labelledby': `cat-${cat}` },
          h('h2', { id: `cat-${cat}`, text: t(`cat_${cat}`) }),
          h('ul', { class: 'docs' }, items.map((doc) => h('li', {}, docButton(doc)))),
        ),
      ),
    );
  };
  vault.listDocuments().then(
    (all) => {
      docs = all;
      list.removeAttribute('aria-busy');
      render();
    },
    (e) => {
      list.removeAttribute('aria-busy');
      list.replaceChildren();
      showError(keyOf(e));
    },
  );
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('vaultTitle') }),
    noticeBox(),
    waitingUploads(),
    rs.recoveryWarning(),
    rs.referentsNotice(),
    alertBox(),
    h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'add-document', text: t('addDocument'), onclick: () => show(uploadScreen) }),
      h('button', { type: 'button', class: 'secondary', id: 'to-account', text: t('myAccount'), onclick: () => show(accountScreen) }),
    ),
    h('div', { class: 'field', role: 'search' },
      h('label', { for: 'search', text: t('search') }),
      h('input', { type: 'search', id: 'search', name: 'search', autocomplete: 'off', oninput: render }),
      count,
    ),
    list,
  );
}

/** Uploads a reload interrupted (kept as ciphertext in IndexedDB): finish or drop each. */
function waitingUploads() {
  const box = h('div', { id: 'waiting-uploads' });
  transfer.waitingUploads().then((list) => {
    if (!box.isConnected) return;
    box.replaceChildren(...list.map((u) => {
      const line = h('p', { class: 'status', 'aria-live': 'polite' });
      const bar = h('progress', { max: '1', value: String(u.size ? u.stored / u.size : 0), 'aria-label': u.name });
      const act = (f) => async (ev) => {
        clearError();
        item.querySelectorAll('button').forEach((b) => (b.disabled = true));
        try {
          await f();
        } catch (e) {
          item.querySelectorAll('button').forEach((b) => (b.disabled = false));
          return showError(keyOf(e));
        }
      };
      const item = h('div', { class: 'notice waiting-upload', 'data-id': u.id },
        h('p', { text: t('waitingUpload', { name: u.name, sent: size(u.stored), total: size(u.size) }) }),
        bar,
        line,
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'finish-upload', text: t('finishUpload'), onclick: act(async () => {
            await transfer.finishKept(u.id, (step, done, total) => {
              line.textContent = `${t(step === 'sending' ? 'uploading' : 'uploadWaiting')} ${t('sentOf', { sent: size(done), total: size(total) })}`;
              bar.value = total ? done / total : 0;
            });
            show(vaultScreen, {}, { notice: 'uploaded' });
          }) }),
          h('button', { type: 'button', class: 'secondary abandon-upload', text: t('abandonUpload'), onclick: act(async () => {
            await transfer.abandonKept(u.id);
            item.remove();
          }) }),
        ),
      );
      return item;
    }));
  }, () => {});
  return box;
}

const EXTENSIONS = { 'image/jpeg': '.jpg', 'image/png': '.png', 'image/webp': '.webp', 'image/heic': '.heic', 'application/pdf': '.pdf' };

/** The document's name with the extension its type calls for (so phones can open it). */
function fileName(doc) {
  const ext = EXTENSIONS[doc.mimeType] ?? '';
  return ext && !doc.name.toLowerCase().endsWith(ext) ? doc.name + ext : doc.name;
}

function docButton(doc) {
  return h('button', { type: 'button', class: 'doc', 'data-id': doc.id, onclick: () => show(documentScreen, { doc }) },
    h('span', { class: 'name', text: doc.name }),
    h('span', { class: 'hint', text: doc.shared
      ? [doc.ownerHandle && t('sharedBy', { handle: doc.ownerHandle }), doc.expiresAt && t('sharedUntil', { date: date(doc.expiresAt) })].filter(Boolean).join(' · ')
      : date(doc.createdAt) }),
  );
}

/** Image or PDF shown in the page (no download needed); null for other types. */
function previewOf(blob, doc) {
  const url = URL.createObjectURL(blob);
  onLeave(() => URL.revokeObjectURL(url));
  const image = doc.mimeType.startsWith('image/');
  const shown = image
    ? h('img', { id: 'preview-img', class: 'preview', src: url, alt: doc.name, onclick: () => openViewer(url, doc, true) })
    : doc.mimeType === 'application/pdf'
      ? h('iframe', { id: 'preview-pdf', class: 'preview', src: url, title: doc.name })
      : null;
  if (!shown) return null;
  return [
    h('button', { type: 'button', class: 'secondary', id: 'fullscreen', text: t('fullScreen'), onclick: () => openViewer(url, doc, image) }),
    shown,
  ];
}

/**
 * A paper over the whole screen (the Fullscreen API where the browser allows it, else a
 * layer over the page): an image fitted to the screen, zoomed with the buttons, the + and
 * − keys, a tap (fit ↔ 2.5×) or the fingers, and moved by scrolling; a PDF in the
 * browser's own viewer, which has its zoom. Escape, "Close" or leaving fullscreen ends it.
 */
function openViewer(url, doc, image) {
  const opener = document.activeElement;
  let zoom = 1;
  const content = image
    ? h('img', { id: 'viewer-img', class: 'fit', src: url, alt: doc.name, onclick: () => setZoom(zoom > 1 ? 1 : 2.5) })
    : h('iframe', { id: 'viewer-pdf', src: url, title: doc.name });
  const level = h('span', { id: 'zoom-level', class: 'zoom-level', 'aria-live': 'polite' });
  const out = h('button', { type: 'button', id: 'zoom-out', 'aria-label': t('zoomOut'), text: '−', onclick: () => setZoom(zoom / 1.5) });
  const into = h('button', { type: 'button', id: 'zoom-in', 'aria-label': t('zoomIn'), text: '+', onclick: () => setZoom(zoom * 1.5) });
  const closeButton = h('button', { type: 'button', id: 'viewer-close', text: t('closeViewer'), onclick: () => close() });
  const viewer = h('div', { id: 'viewer', class: 'viewer', role: 'dialog', 'aria-modal': 'true', 'aria-label': doc.name },
    h('div', { class: 'viewer-bar' }, h('span', { class: 'viewer-name', text: doc.name }), image && [out, level, into], closeButton),
    // Focusable, so that the arrow keys move a zoomed image.
    h('div', { class: 'viewer-stage', id: 'viewer-stage', tabindex: '0', role: 'group', 'aria-label': doc.name }, content),
  );
  function setZoom(z) {
    zoom = Math.min(4, Math.max(1, Math.round(z * 100) / 100));
    content.classList.toggle('fit', zoom === 1);
    content.style.width = zoom === 1 ? '' : `${zoom * 100}%`;
    level.textContent = `${Math.round(zoom * 100)} %`;
    out.disabled = zoom <= 1;
    into.disabled = zoom >= 4;
  }
  let open = true;
  function close() {
    if (!open) return;
    open = false;
    document.removeEventListener('keydown', onKey);
    document.removeEventListener('fullscreenchange', onFullscreen);
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    viewer.remove();
    if (opener?.isConnected) opener.focus();
  }
  function onKey(e) {
    if (e.key === 'Escape') close();
    else if (image && e.key === '+') setZoom(zoom * 1.5);
    else if (image && (e.key === '-' || e.key === '−')) setZoom(zoom / 1.5);
    else if (e.key === 'Tab') {
      // Keep the focus in the viewer (a modal dialog).
      const buttons = [...viewer.querySelectorAll('button:not([disabled]), #viewer-stage')];
      const at = buttons.indexOf(document.activeElement);
      const next = e.shiftKey ? (at <= 0 ? buttons.length - 1 : at - 1) : (at + 1) % buttons.length;
      e.preventDefault();
      buttons[next]?.focus();
    }
  }
  const onFullscreen = () => document.fullscreenElement || close();
  if (image) setZoom(1);
  document.body.append(viewer);
  document.addEventListener('keydown', onKey);
  onLeave(close);
  viewer.requestFullscreen?.().then(() => document.addEventListener('fullscreenchange', onFullscreen), () => {});
  closeButton.focus();
}

const viewable = (doc) => doc.mimeType.startsWith('image/') || doc.mimeType === 'application/pdf';

/**
 * Open, download, and (for its owner) share, link, delete. `fetchBlob` gets the
 * decrypted file once; a second look or a download after a look costs nothing.
 */
function documentView(doc, fetchBlob, { extra = [], headingKey = null } = {}) {
  let blob = null;
  const preview = h('div', { id: 'preview', 'aria-live': 'polite' });
  const get = async (button) => {
    if (blob) return blob;
    const label = button.textContent;
    button.disabled = true;
    button.textContent = t('decrypting');
    try {
      // Progress by bytes received; a paper opened before in the session comes at once.
      blob = await fetchBlob((got, total) => (button.textContent = `${t('decrypting')} ${percent(got, total)}`));
      return blob;
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  };
  const act = (f) => async (ev) => {
    clearError();
    try {
      await f(ev.currentTarget);
    } catch (e) {
      showError(keyOf(e));
    }
  };
  return [
    headingKey && h('p', { class: 'lead', text: t(headingKey) }),
    h('h1', { tabindex: '-1', text: doc.name }),
    h('p', { class: 'hint', id: 'doc-facts', text: [t(`cat_${doc.category}`), size(doc.size), doc.createdAt ? t('addedOn', { date: date(doc.createdAt) }) : null].filter(Boolean).join(' · ') }),
    noticeBox(),
    alertBox(),
    // Above the buttons: the paper is what the person came for.
    preview,
    h('div', { class: 'actions' },
      viewable(doc) && h('button', { type: 'button', id: 'view', text: t('viewHere'), onclick: act(async (b) => {
        preview.replaceChildren(...(previewOf(await get(b), doc) ?? []));
        preview.scrollIntoView?.({ block: 'nearest' });
      }) }),
      h('button', { type: 'button', class: viewable(doc) ? 'secondary' : null, id: 'download', text: t('downloadFile'), onclick: act(async (b) => saveBlob(await get(b), fileName(doc))) }),
      extra,
    ),
  ];
}

/** Story 5 (own documents) and 6 (shared with me): one paper. */
function documentScreen({ doc }) {
  const back = h('button', { type: 'button', class: 'secondary', id: 'back', text: t('back'), onclick: () => show(homeScreen()) });
  if (doc.shared) {
    return h('div', { class: 'stack' },
      documentView(doc, (progress) => transfer.openDocument(doc, progress), { headingKey: 'sharedWithYou' }),
      doc.ownerHandle && h('p', { id: 'shared-by', text: t('sharedBy', { handle: doc.ownerHandle }) }),
      doc.expiresAt && h('p', { text: t('sharedUntil', { date: date(doc.expiresAt) }) }),
      back,
    );
  }
  const who = h('div', { id: 'who', 'aria-busy': 'true' }, h('p', { class: 'status', text: t('loading') }));
  const refresh = () =>
    vault.sharesOf(doc).then(
      ({ shares, links }) => {
        who.removeAttribute('aria-busy');
        const live = links.filter((l) => !(l.expires_at && l.expires_at <= now()) && !(l.max_downloads && l.downloads >= l.max_downloads));
        if (!shares.length && !live.length) return who.replaceChildren(h('p', { id: 'only-you', text: t('onlyYou') }));
        who.replaceChildren(h('ul', { class: 'shares' },
          shares.map((s) => h('li', { 'data-recipient': s.recipient },
            h('span', { text: s.expires_at ? t('shareUntil', { handle: s.handle ?? '?', date: date(s.expires_at) }) : s.handle ?? '?' }),
            h('button', { type: 'button', class: 'secondary revoke', 'aria-label': t('stopSharingWith', { handle: s.handle ?? '?' }), text: t('stopSharing'),
              onclick: async () => {
                try {
                  await vault.revokeShare(doc, s.recipient);
                  showNotice('revoked', { handle: s.handle ?? '?' });
                } catch (e) {
                  showError(keyOf(e));
                }
                refresh();
              } }),
          )),
          live.map((l) => h('li', { 'data-link': l.id },
            h('span', { text: t('linkFacts', { date: date(l.expires_at), left: l.max_downloads ? l.max_downloads - l.downloads : '∞' }) }),
            h('button', { type: 'button', class: 'secondary delete-link', text: t('deleteLink'),
              onclick: async () => {
                try {
                  await vault.deleteLink(l.id);
                  showNotice('linkDeleted');
                } catch (e) {
                  showError(keyOf(e));
                }
                refresh();
              } }),
          )),
        ));
      },
      (e) => {
        who.removeAttribute('aria-busy');
        who.replaceChildren();
        showError(keyOf(e));
      },
    );
  refresh();
  const confirmBox = h('div', { id: 'confirm-delete', class: 'confirm', hidden: true },
    h('p', { id: 'confirm-delete-text', text: t('deleteConfirm', { name: doc.name }) }),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'danger', id: 'delete-yes', text: t('deleteYes'), onclick: async (ev) => {
        const button = ev.currentTarget; // null once the event is handled
        button.disabled = true;
        try {
          await vault.deleteDocument(doc);
          transfer.forget(doc.id);
        } catch (e) {
          button.disabled = false;
          return showError(keyOf(e));
        }
        show(vaultScreen, { name: doc.name }, { notice: 'deleted' });
      } }),
      h('button', { type: 'button', class: 'secondary', id: 'delete-no', text: t('deleteNo'), onclick: () => {
        confirmBox.hidden = true;
        document.getElementById('delete').focus();
      } }),
    ),
  );
  return h('div', { class: 'stack' },
    documentView(doc, (progress) => transfer.openDocument(doc, progress), { extra: [
      h('button', { type: 'button', class: 'secondary', id: 'share', text: t('shareWithWorker'), onclick: () => show(shareScreen, { doc }) }),
      h('button', { type: 'button', class: 'secondary', id: 'make-link', text: t('makeLink'), onclick: () => show(linkCreateScreen, { doc }) }),
      h('button', { type: 'button', class: 'secondary danger', id: 'delete', 'aria-controls': 'confirm-delete', text: t('delete'), onclick: () => {
        confirmBox.hidden = false;
        document.getElementById('delete-no').focus();
      } }),
    ] }),
    confirmBox,
    h('h2', { text: t('whoCanSee') }),
    who,
    back,
  );
}

/** An expiry `<select>`; its value in seconds from now, or '' for none. */
function expirySelect(id, labelKey, withNever, chosen) {
  const options = [[String(DAY), 'oneDay'], [String(7 * DAY), 'oneWeek'], [String(30 * DAY), 'oneMonth'], [String(90 * DAY), 'threeMonths']];
  return select(id, labelKey, withNever ? [['', 'noEnd'], ...options] : options, chosen);
}
const expiryOf = (value) => (value ? now() + Number(value) : null);

/** Story 6: share with a worker, after comparing the safety words face to face. */
function shareScreen({ doc, found = null }) {
  const back = () => show(documentScreen, { doc });
  const find = h('form', { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    const handle = find.handle.value.trim().toLowerCase();
    if (!HANDLE_RE.test(handle)) return showError('errHandle', 'handle');
    if (handle === vault.currentAccount().handle) return showError('errSelf', 'handle');
    try {
      const who = await busy(find, () => vault.findAccount(handle));
      show(shareScreen, { doc, found: who }, { values: { handle } });
    } catch (e) {
      const key = keyOf(e);
      showError(key, key === 'errNoSuchAccount' ? 'handle' : null);
    }
  } },
    field('handle', 'workerHandle', { autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', required: true, readonly: found ? true : null }, 'workerHandleHint'),
    !found && h('button', { type: 'submit', id: 'find-worker', text: t('findWorker') }),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  const confirm = found && h('form', { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    try {
      await busy(confirm, () => vault.shareWith(doc, found, expiryOf(confirm['share-expiry'].value)));
    } catch (e) {
      return showError(keyOf(e));
    }
    show(documentScreen, { doc, handle: found.handle }, { notice: 'shared' });
  } },
    h('h2', { text: t('checkWords') }),
    h('p', { text: t('checkWordsHow', { handle: found.handle }) }),
    fingerprintBox(found, 'their-fingerprint', { scan: true, guard: 'share-confirm' }),
    expirySelect('share-expiry', 'shareEnds', true, ''),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: 'share-confirm', text: t('wordsSame') }),
      h('button', { type: 'button', class: 'secondary danger', id: 'share-refuse', text: t('wordsDifferent'), onclick: () => {
        show(documentScreen, { doc }, { notice: 'wordsDifferentNotice' });
      } }),
    ),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('shareTitle', { name: doc.name }) }),
    h('p', { class: 'lead', text: t('shareIntro') }),
    alertBox(),
    find,
    confirm,
    h('button', { type: 'button', class: 'secondary', text: t('cancel'), onclick: back }),
  );
}

/** Story 7: a link for an office, with an end date and a number of openings. */
function linkCreateScreen({ doc, made = null }) {
  if (made) {
    const input = h('input', { type: 'text', id: 'link-url', readonly: true, value: made.url, dir: 'ltr', 'aria-describedby': 'link-once' });
    return h('div', { class: 'stack' },
      h('h1', { tabindex: '-1', text: t('linkMadeTitle') }),
      noticeBox(),
      h('p', { id: 'link-once', class: 'lead', text: t('linkOnce', { date: date(made.expires_at), count: made.max_downloads }) }),
      h('div', { class: 'field' }, h('label', { for: 'link-url', text: t('linkLabel') }), input),
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'copy-link', text: t('copyLink'), onclick: async () => {
          input.select();
          try {
            await navigator.clipboard.writeText(made.url);
            showNotice('copied');
          } catch {
            showNotice('copyByHand');
          }
        } }),
      ),
      drawQr(h('div', { class: 'qr', id: 'link-qr' }), made.url, 'linkQrLabel'),
      h('button', { type: 'button', class: 'secondary', id: 'back', text: t('back'), onclick: () => show(documentScreen, { doc }) }),
    );
  }
  const form = h('form', { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    try {
      const link = await busy(form, () =>
        vault.createLink(doc, expiryOf(form['link-expiry'].value), Number(form['link-max'].value)),
      );
      show(linkCreateScreen, { doc, made: link });
    } catch (e) {
      showError(keyOf(e));
    }
  } },
    expirySelect('link-expiry', 'linkEnds', false, String(7 * DAY)),
    select('link-max', 'linkMax', [['1', 'once'], ['3', 'threeTimes'], ['10', 'tenTimes']], '3'),
    alertBox(),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: 'link-submit', text: t('makeLinkButton') }),
      h('button', { type: 'button', class: 'secondary', text: t('cancel'), onclick: () => show(documentScreen, { doc }) }),
    ),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('linkTitle', { name: doc.name }) }),
    h('p', { class: 'lead', text: t('linkIntro') }),
    form,
  );
}

/** Story 7, for the visitor without an account: the paper behind a link. */
export function linkScreen({ id, secret }) {
  const body = h('div', { class: 'stack', id: 'link-body', 'aria-busy': 'true' }, h('p', { class: 'status', text: t('loading') }));
  let link = null;
  (async () => {
    [link] = await Promise.all([import('./link.js'), vault.ready()]);
    return link.openLink(id, secret);
  })().then(
    (opened) => {
      body.removeAttribute('aria-busy');
      const left = h('p', { id: 'link-left' });
      const tell = (count) => (left.textContent = t(count === null ? 'linkUntil' : 'linkLeft', { date: date(opened.expiresAt ?? 0), count }));
      tell(opened.downloadsLeft);
      body.replaceChildren(
        ...documentView(opened, () => link.linkDocument(opened, secret, tell), { headingKey: 'linkVisitorLead' }).filter(Boolean),
        left,
        h('p', { class: 'hint', id: 'link-counting', text: t('linkCounting') }),
      );
      main.querySelector('h1')?.focus();
    },
    (e) => {
      body.removeAttribute('aria-busy');
      body.replaceChildren(...linkProblem(keyOf(e)));
      main.querySelector('h1')?.focus();
    },
  );
  return body;
}

const linkProblem = (key) => [
  h('h1', { tabindex: '-1', text: t('linkProblemTitle') }),
  h('p', { class: 'error', id: 'form-error', role: 'alert', text: t(key) }),
];

/** A `#/link/…` address without a whole key: cut short, nothing was asked of the server. */
export function badLinkScreen() {
  return h('div', { class: 'stack' }, ...linkProblem('errLinkCut'));
}

// ---------------------------------------------------------------- uploads

/**
 * The upload screen's chosen file and its upload, kept in memory while the screen is
 * drawn again (another language), and across an expired session of the same account
 * (the upload goes on after logging in). { account, file, pages (more photos of the same
 * paper), prepared (what is sent, once made), running, interrupted, onStep }.
 */
let draft = null;
vault.onLogout((forget) => forget && (draft = null));

function uploadScreen() {
  const account = vault.currentAccount()?.id;
  if (draft && draft.account !== account) draft = null;
  const progress = h('progress', { id: 'upload-progress', max: '1', value: '0', hidden: true, 'aria-labelledby': 'upload-status' });
  const status = h('p', { class: 'status', id: 'upload-status', 'aria-live': 'polite' });
  let picked = draft?.file ?? null; // the photo or file, whichever input gave it last, with its real type
  const pages = draft?.pages ?? []; // more photos of the same paper: all become one PDF
  let autoName = null; // the name this screen proposed, replaced when the category changes
  let categoryChosen = false; // once the person picks a category, the content no longer does
  const chosen = h('p', { class: 'hint', id: 'file-chosen', 'aria-live': 'polite' });
  const limit = h('p', { class: 'hint', id: 'upload-limit' });
  intake.serverLimits().then((l) => (limit.textContent = t('uploadLimit', { size: size(l.maxFileBytes) })), () => {});
  const category = () => form.querySelector('input[name="category"]:checked')?.value ?? 'other';
  const proposeName = () => {
    autoName = t('paperOf', { category: t(`cat_${category()}`), date: date(now()) });
    form['doc-name'].value = autoName;
  };
  // Refused before anything is read in full or encrypted: empty, or over the server's limit.
  const refusal = async (file) => {
    if (file.size === 0) return 'errEmptyFile';
    const l = await intake.serverLimits().catch(() => null);
    return l && file.size > l.maxFileBytes ? 'errFileTooBig' : null;
  };
  // A file's checks take a round trip (the server's limits) on a slow link: "Save"
  // pressed meanwhile waits for them instead of saying no file was chosen.
  let picking = null;
  const pick = (ev) => (picking = checkPicked(ev.currentTarget));
  const checkPicked = async (input) => {
    const file = input.files[0];
    if (!file) return;
    clearError();
    const refused = await refusal(file);
    if (refused) {
      picked = null;
      chosen.textContent = '';
      input.value = '';
      return showError(refused, input.id);
    }
    const type = await intake.sniffType(file);
    picked = new File([file], file.name, { type, lastModified: file.lastModified });
    pages.length = 0;
    draft = { account, file: picked, pages, running: false, interrupted: false, onStep };
    chosen.textContent = t('fileChosen', { name: file.name, size: size(file.size) });
    showPhotoChoices();
    if (!categoryChosen) form.querySelector(`#category-${intake.categoryFor(type)}`).checked = true;
    const base = file.name.replace(/\.[^.]+$/, '');
    const name = form['doc-name'].value;
    if (!name || name === autoName) {
      if (intake.isCameraName(base)) proposeName();
      else form['doc-name'].value = base;
    }
  };
  // Another photo of the same paper (the first must be a photo too).
  const addPage = async (ev) => {
    const input = ev.currentTarget;
    const file = input.files[0];
    input.value = '';
    if (!file) return;
    clearError();
    const type = await intake.sniffType(file);
    if (!picked?.type.startsWith('image/') || !type.startsWith('image/') || file.size === 0) return showError('errPageType', 'page');
    pages.push(new File([file], file.name, { type, lastModified: file.lastModified }));
    if (draft) draft.prepared = null;
    showPhotoChoices();
  };
  const pagesLine = h('p', { class: 'hint', id: 'pages-chosen', 'aria-live': 'polite' });
  const photoChoices = h('div', { id: 'photo-choices', hidden: true },
    h('input', { type: 'file', id: 'page', name: 'page', class: 'visually-hidden', accept: 'image/*', capture: 'environment', onchange: addPage }),
    h('label', { class: 'button secondary', for: 'page' }, t('addPage')),
    pagesLine,
    h('label', { class: 'choice', id: 'keep-original-choice' },
      h('input', { type: 'checkbox', id: 'keep-original', name: 'keep-original' }), t('keepOriginal')),
  );
  // A photo can get more pages, or be sent as it is (not when it has several pages).
  function showPhotoChoices() {
    const photo = Boolean(picked?.type.startsWith('image/'));
    photoChoices.hidden = !photo;
    pagesLine.textContent = pages.length ? t('pagesChosen', { count: pages.length + 1 }) : '';
    photoChoices.querySelector('#keep-original-choice').hidden = pages.length > 0;
  }
  // What is sent: the photos made small (one PDF for several), else the chosen file; made
  // once per choice, so that an upload resumed later sends the very same bytes.
  async function toSend(mine, name, keepOriginal) {
    const all = [mine.file, ...(mine.pages ?? [])];
    const want = [keepOriginal && all.length === 1, all.length, name].join('\u0000');
    if (mine.prepared?.want === want) return mine.prepared.file;
    let file;
    if (all.length > 1) {
      const prepared = [];
      for (const p of all) prepared.push(await photos.preparePhoto(p, p.type, { forPdf: true }));
      file = await photos.photosToPdf(prepared, name);
    } else {
      file = keepOriginal ? mine.file : await photos.preparePhoto(mine.file, mine.file.type);
    }
    mine.prepared = { want, file };
    return file;
  }
  // The step by name, and for sending the bytes that left the device; written to
  // whichever upload screen is shown (it may have been drawn again since the start).
  function onStep(step, done, total) {
    const bar = document.getElementById('upload-progress');
    const line = document.getElementById('upload-status');
    if (!bar || !line) return;
    const shown = { preparing: 'preparing', locking: 'encrypting', sending: 'uploading' }[step] ?? 'uploadWaiting';
    line.textContent = step === 'preparing'
      ? t(shown)
      : step === 'locking'
        ? `${t(shown)} ${percent(done, total)}`
        : `${t(shown)} ${t('sentOf', { sent: size(done), total: size(total) })} (${percent(done, total)})`;
    bar.value = total ? done / total : 0;
    line.dataset.step = step;
  }
  // Disables the form while an upload runs.
  function busyForm(on) {
    form.querySelectorAll('button').forEach((b) => (b.disabled = on));
    form.setAttribute('aria-busy', String(on));
    progress.hidden = !on;
    if (!on) status.textContent = '';
  }
  const form = h('form', { id: 'upload-form', novalidate: true, 'oncoffre:idle': () => busyForm(false), onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    await picking;
    const name = form['doc-name'].value.trim();
    const chosenCategory = category();
    if (!picked) return showError('errNoFile', 'camera');
    if (!name) return showError('errRequired', 'doc-name');
    const refused = await refusal(picked);
    if (refused) return showError(refused, 'file');
    const mine = draft ?? (draft = { account, file: picked, pages, onStep });
    const keepOriginal = form['keep-original'].checked;
    mine.running = true;
    mine.interrupted = false;
    busyForm(true);
    try {
      mine.onStep('preparing', 0, 0);
      let file;
      try {
        file = await toSend(mine, name, keepOriginal);
      } catch (e) {
        throw e instanceof photos.PageError ? e : new ApiError('errUnknown');
      }
      const tooBig = await refusal(file);
      if (tooBig) throw new ApiError(tooBig);
      await vault.ready();
      await transfer.uploadDocument(file, name, chosenCategory, (...a) => mine.onStep(...a));
    } catch (e) {
      mine.running = false;
      const key = e instanceof photos.PageError ? e.key : keyOf(e);
      // An expired session: once the same person has logged in again, this screen comes
      // back and the upload goes on from where the server has it.
      mine.interrupted = key === 'errSession';
      // The screen may have been drawn again meanwhile (another language): the live one.
      document.getElementById('upload-form')?.dispatchEvent(new Event('coffre:idle'));
      return showError(key === 'errNetwork' ? 'errUploadCut' : key);
    }
    if (draft === mine) draft = null;
    if (current?.screen === uploadScreen) show(vaultScreen, {}, { notice: 'uploaded' });
  } },
    h('div', { class: 'pickers' },
      // On phones, `capture` opens the camera directly; elsewhere it is a file picker.
      h('input', { type: 'file', id: 'camera', name: 'camera', class: 'visually-hidden', accept: 'image/*', capture: 'environment', onchange: pick }),
      h('label', { class: 'button', for: 'camera' }, t('takePhoto')),
      h('input', { type: 'file', id: 'file', name: 'file', class: 'visually-hidden', accept: 'image/*,application/pdf,.doc,.docx,.odt,.xlsx,.ods', onchange: pick }),
      h('label', { class: 'button secondary', for: 'file' }, t('pickFile')),
    ),
    limit,
    chosen,
    photoChoices,
    field('doc-name', 'docName', { autocomplete: 'off', maxlength: '200', required: true }, 'docNameHint'),
    h('fieldset', {},
      h('legend', { text: t('category') }),
      vault.CATEGORIES.map((cat, i) =>
        h('label', { class: 'choice' }, h('input', { type: 'radio', name: 'category', id: `category-${cat}`, value: cat, checked: i === 0, onchange: () => {
          categoryChosen = true;
          if (autoName && form['doc-name'].value === autoName) proposeName();
        } }), t(`cat_${cat}`)),
      ),
    ),
    alertBox(),
    progress,
    status,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: 'upload-submit', text: t('save') }),
      h('button', { type: 'button', class: 'secondary', text: t('cancel'), onclick: () => {
        draft = null;
        show(vaultScreen);
      } }),
    ),
  );
  if (picked) chosen.textContent = t('fileChosen', { name: picked.name, size: size(picked.size) });
  showPhotoChoices();
  if (draft?.running) busyForm(true);
  // Back after logging in again: go on by itself, once show() has restored the values.
  if (draft?.interrupted) setTimeout(() => form.isConnected && form.requestSubmit(), 0);
  return h('div', { class: 'stack' }, h('h1', { tabindex: '-1', text: t('addTitle') }), form);
}

// ---------------------------------------------------------------- account care

/** Story 8: a new passphrase or PIN for oneself. */
function accountScreen() {
  const worker = vault.currentAccount().role === 'worker';
  const chooser = secretChooser('new', { pin: !worker });
  const form = h('form', { novalidate: true, oninput: () => chooser.update(), onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    const secret = chooser.check(form);
    if (secret === null) return;
    try {
      await busy(form, () => vault.changeSecret(secret));
    } catch (e) {
      return showError(keyOf(e));
    }
    show(homeScreen(), {}, { notice: 'secretChanged' });
  } },
    chooser.nodes,
    alertBox(),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: 'change-submit', text: t('changeSecretButton') }),
      h('button', { type: 'button', class: 'secondary', text: t('back'), onclick: () => show(homeScreen()) }),
    ),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('accountTitle') }),
    h('p', { class: 'lead', text: t('accountIntro') }),
    form,
    h('h2', { text: t('keepingAccess') }),
    h('p', { class: 'hint', text: t('keepingAccessHint') }),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', id: 'to-referents', text: t('myReferents'), onclick: () => show(rs.referentsScreen) }),
      h('button', { type: 'button', class: 'secondary', id: 'new-kit', text: t('newKit'), onclick: (ev) => rs.printNewKit(ev.currentTarget) }),
    ),
    h('h2', { text: t('sessionsTitle') }),
    h('p', { class: 'hint', text: t('sessionsHint') }),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', id: 'to-sessions', text: t('mySessions'), onclick: () => show(sessionsScreen, { back: accountScreen }) }),
    ),
  );
}

/** Story 8: the printed recovery code opens the vault; a new secret is chosen. */
export function recoveryScreen({ handle = '' } = {}) {
  const chooser = secretChooser('new');
  const form = h('form', { novalidate: true, oninput: () => chooser.update(), onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    const name = form.handle.value.trim().toLowerCase();
    const code = form['recovery-code'].value.trim();
    if (!name) return showError('errRequired', 'handle');
    if (!code) return showError('errRequired', 'recovery-code');
    const secret = chooser.check(form);
    if (secret === null) return;
    let account;
    try {
      account = await busy(form, async () => {
        await vault.ready();
        return vault.recover(name, code, secret);
      });
    } catch (e) {
      const key = keyOf(e);
      return showError(key, key === 'errRecoveryCode' || key === 'errRecoveryWrong' ? 'recovery-code' : null);
    }
    await hooks.home(account);
    showNotice('recovered');
  } },
    field('handle', 'handle', { autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true, value: handle || null }),
    field('recovery-code', 'recoveryCode', { autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false', required: true, dir: 'ltr' }, 'recoveryCodeHint'),
    chooser.nodes,
    alertBox(),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: 'recover-submit', text: t('recoverButton') }),
      h('button', { type: 'button', class: 'secondary', text: t('back'), onclick: () => show(hooks.loginScreen) }),
    ),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('recoveryTitle') }),
    h('p', { class: 'lead', text: t('recoveryIntro') }),
    form,
  );
}

Object.assign(rs.ctx, { fingerprintBox, secretChooser, recoveryKitScreen, homeScreen, workerHome });
