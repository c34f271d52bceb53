// Coffre web app: screens built with the DOM, no framework, no build step. Strings come
// from i18n/<lang>.js only. This module holds what the first screen needs; every other
// screen is in screens.js, loaded once the person moves on (a smaller first load on a
// weak connection).

import * as vault from './vault.js';
import {
  LANGS, h, t, field, secretField, alertBox, noticeBox, showError, clearError, busy, keyOf, show,
  current, hooks, pickLanguage, setLanguage, snapshot,
} from './ui.js';
import { remembered, setShared, isShared, forgetMemory } from './api.js';

const screens = () => import('./screens.js');

/** The screen to come back to after an expired session, with what was typed on it. */
let resume = null;

hooks.renderBar = () => {
  const langs = document.getElementById('langs');
  langs.replaceChildren(
    ...Object.entries(LANGS).map(([code, name]) =>
      h('button', {
        type: 'button', lang: code, 'aria-pressed': String(document.documentElement.lang === code), text: name,
        onclick: async () => {
          if (document.documentElement.lang === code) return;
          await setLanguage(code, true);
          if (current) show(current.screen, current.args, { keep: true });
          langs.querySelector(`[lang="${code}"]`)?.focus();
        },
      }),
    ),
  );
  langs.setAttribute('aria-label', t('chooseLanguage'));
  document.getElementById('session').replaceChildren(
    vault.currentAccount()
      ? h('button', { type: 'button', id: 'logout', text: t('logout'), onclick: logout })
      : '',
  );
};

hooks.sessionLost = () => {
  const account = vault.currentAccount();
  if (!account) return;
  if (isShared()) return void lock('errSession'); // nor the name
  if (current && current.screen !== loginScreen) {
    resume = { screen: current.screen, args: current.args, values: snapshot(), handle: account.handle };
  }
  vault.logout({ forget: false }).finally(() => {
    show(loginScreen, {}, { notice: 'errSession' });
    document.getElementById('handle').value = account.handle;
  });
};

const logout = () => lock('loggedOut');

/** Keys freed, session revoked, screen and memory cleared (keepalive: a closing tab). */
async function lock(notice, keepalive = false) {
  resume = null;
  const done = vault.logout({ keepalive }); // sent before any await: the page may be going
  forgetMemory();
  show(loginScreen, {}, { notice });
  if (isShared()) (await import('./shared.js')).stop();
  await done;
}

/** After a login: back to the screen an expired session interrupted, or home. */
async function home(account) {
  const s = await screens();
  if (resume && resume.handle === account.handle) {
    const { screen, args, values } = resume;
    resume = null;
    return show(screen, args, { values, notice: 'resumed' });
  }
  resume = null;
  show(account.role === 'worker' ? s.workerHome : s.vaultScreen);
}

/** Which kind of secret a handle uses on this device, so that an error names it and a
 * PIN gets the number keyboard (never the secret). */
const kinds = remembered('kind');
const rememberKind = (handle, secret) => kinds.put(handle, /^[0-9]+$/.test(secret) ? 'pin' : 'passphrase');
const rememberedKind = (handle) => kinds.get(handle);
const WRONG = { pin: 'errWrongLoginPin', passphrase: 'errWrongLoginPassphrase' };

/** A wait in seconds, in words: whole minutes up to an hour, then whole hours (rounded up). */
function waitText(seconds) {
  if (seconds <= 3600) return t('unitMinutes', { count: Math.max(1, Math.ceil(seconds / 60)) });
  return t('unitHours', { count: Math.ceil(seconds / 3600) });
}

function loginScreen() {
  const kindOf = () => rememberedKind(form.handle.value.trim().toLowerCase());
  const keyboard = async () => form.passphrase.setAttribute('inputmode', (await kindOf()) === 'pin' ? 'numeric' : 'text');
  const form = h('form', { novalidate: true, oninput: (ev) => ev.target.id === 'handle' && keyboard(), onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    const handle = form.handle.value.trim().toLowerCase();
    const pass = form.passphrase.value;
    const shared = form.shared.checked;
    if (!handle) return showError('errRequired', 'handle');
    if (!pass) return showError('errRequired', 'passphrase');
    try {
      const account = await busy(form, async () => {
        await vault.ready();
        return vault.login(handle, pass, { shared });
      });
      if (shared) (await import('./shared.js')).watch(lock);
      else await rememberKind(handle, pass);
      await home(account);
    } catch (e) {
      let key = keyOf(e);
      if (key === 'errWrongLogin') key = WRONG[await kindOf()] ?? key;
      showError(key, key.startsWith('errWrongLogin') ? 'passphrase' : null);
      const said = document.getElementById('form-error');
      if (Number.isInteger(e.left)) said?.append(' ', t(e.left === 0 ? 'lastTry' : 'triesLeft', { count: e.left }));
      if (key === 'errThrottled' && Number.isInteger(e.retryAfter)) said?.append(' ', t('tryAgainIn', { time: waitText(e.retryAfter) }));
    }
  } },
    field('handle', 'handle', { autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true }),
    secretField('passphrase', 'passphrase', { autocomplete: 'current-password', required: true }),
    h('label', { class: 'choice' }, h('input', { type: 'checkbox', id: 'shared', name: 'shared', checked: isShared(), onchange: (ev) => setShared(ev.target.checked) }), t('sharedComputer')),
    alertBox(),
    h('button', { type: 'submit', id: 'login-submit', text: t('loginButton') }),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  queueMicrotask(keyboard);
  const go = (name) => async () => show((await screens())[name], { handle: form.handle.value.trim().toLowerCase() });
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('loginTitle') }),
    h('p', { class: 'lead', text: t('tagline') }),
    noticeBox(),
    form,
    h('button', { type: 'button', class: 'link', id: 'to-recovery', text: t('forgotSecret'), onclick: go('recoveryScreen') }),
    h('button', { type: 'button', class: 'link', id: 'to-ask-recovery', text: t('lostBoth'), onclick: go('askRecoveryScreen') }),
    h('button', { type: 'button', class: 'link', id: 'to-worker-register', text: t('iAmWorker'), onclick: go('workerRegisterScreen') }),
  );
}

/** `#/link/<id>/<key>`: a share link opened by someone without an account. */
async function route() {
  const m = /^#\/link\/([0-9a-f]{32})\/(AGE-SECRET-KEY-1[0-9A-Z]+)$/i.exec(location.hash);
  if (m) {
    const s = await screens();
    return show(s.linkScreen, { id: m[1].toLowerCase(), secret: m[2].toUpperCase() });
  }
  if (location.hash.startsWith('#/link/')) return show((await screens()).badLinkScreen);
  if (!vault.currentAccount()) show(loginScreen);
}

// ---------------------------------------------------------------- start

hooks.home = home;
hooks.loginScreen = loginScreen;

await setLanguage(pickLanguage(), false);
await route();
addEventListener('hashchange', route);
// Fetch and compile the wasm while the person types.
vault.ready().catch(() => {
  if (current?.screen === loginScreen) showError('errLoad');
});
