// The parts every screen uses: strings, DOM building, errors in plain words, and showing a
// screen. A screen is a function returning its content; switching the language rebuilds
// it and puts back everything typed or chosen.

import { ApiError, local } from './api.js';

export const LANGS = { fr: 'Français', en: 'English', ar: 'العربية' };
const LANG_KEY = 'coffre.lang';
export const HANDLE_RE = /^[a-z0-9._-]{3,64}$/;

let S = {}; // strings of the current language
/** The screen on show: { screen, args, error, notice, cleanup: [fn] }. */
export let current = null;
export const main = document.getElementById('main');

/**
 * What app.js plugs in (screens.js must not import app.js: the entry module awaits at
 * top level, and a cycle through it would never settle).
 */
export const hooks = { renderBar: () => {}, sessionLost: () => {}, home: async () => {}, loginScreen: null };

// ---------------------------------------------------------------- language

export function pickLanguage() {
  const saved = local.get(LANG_KEY);
  if (saved in LANGS) return saved;
  for (const l of navigator.languages ?? [navigator.language]) {
    const base = String(l).toLowerCase().split('-')[0];
    if (base in LANGS) return base;
  }
  return 'en';
}

let more = false;
const moreOf = async (l) => (more ? (await import(`./i18n/more/${l}.js`)).default : {});
/** Strings and styles of later screens (not in the first load). */
export async function loadMore() {
  if (more) return;
  more = true;
  const css = h('link', { rel: 'stylesheet', href: '/more.css' });
  document.head.append(css);
  // Both in before a screen shows (no unstyled flash).
  await Promise.all([new Promise((r) => (css.onload = css.onerror = r)), moreOf(S.lang).then((m) => Object.assign(S, m))]);
}

export async function setLanguage(lang, remember) {
  S = { ...(await import(`./i18n/${lang}.js`)).default, ...(await moreOf(lang)) };
  document.documentElement.lang = S.lang;
  document.documentElement.dir = S.dir;
  document.title = S.appName;
  if (remember) local.set(LANG_KEY, lang);
  hooks.renderBar();
}

export const lang = () => S.lang;

/** `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  return (S[key] ?? key).replace(/\{(\w+)\}/g, (_, k) => vars[k] ?? '');
}

/** A date (unix seconds) in the current language. */
export function date(seconds) {
  return new Date(seconds * 1000).toLocaleDateString(S.lang, { day: 'numeric', month: 'long', year: 'numeric' });
}

/** A size in bytes, rounded, in the current language. */
export function size(bytes) {
  const fmt = (n, unit) => `${n.toLocaleString(S.lang, { maximumFractionDigits: 1 })} ${t(unit)}`;
  if (bytes < 1000) return fmt(bytes, 'unitB');
  if (bytes < 1e6) return fmt(bytes / 1e3, 'unitKB');
  if (bytes < 1e9) return fmt(bytes / 1e6, 'unitMB');
  return fmt(bytes / 1e9, 'unitGB');
}

// ---------------------------------------------------------------- DOM helpers

export function h(tag, attrs = {}, ...children) {
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
export function field(id, labelKey, attrs = {}, hintKey = null) {
  const hint = hintKey ? h('p', { class: 'hint', id: `${id}-hint`, text: t(hintKey) }) : null;
  const input = h('input', { id, name: id, type: 'text', 'aria-describedby': hint ? `${id}-hint` : null, ...attrs });
  return h('div', { class: 'field' }, h('label', { for: id, text: t(labelKey) }), hint, input);
}

/** A secret input with a Show/Hide button (people type PINs on small keyboards). */
export function secretField(id, labelKey, attrs = {}, hintKey = null) {
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

/** A labelled <select> of `options` ([value, labelKey]). */
export function select(id, labelKey, options, chosen) {
  return h('div', { class: 'field' },
    h('label', { for: id, text: t(labelKey) }),
    h('select', { id, name: id }, options.map(([value, key]) => h('option', { value, selected: value === chosen, text: t(key) }))),
  );
}

export const alertBox = () => h('p', { class: 'error', id: 'form-error', role: 'alert' });
export const noticeBox = () => h('p', { class: 'notice', id: 'notice', role: 'status' });

/** Shows an error in plain words and puts the focus on the field to fix, if any. */
export function showError(key, fieldId = null) {
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

export function clearError() {
  current.error = null;
  const box = document.getElementById('form-error');
  if (box) box.textContent = '';
  for (const el of main.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

/** Shows a notice (role=status) on the current screen. */
export function showNotice(key, vars = {}) {
  current.notice = key;
  const n = document.getElementById('notice');
  if (n) n.textContent = t(key, vars);
}

/** Runs `work` with the form's buttons disabled and a "please wait" status. */
export async function busy(form, work) {
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
 * expired session goes back to the login screen, remembering this screen and what was
 * typed so that logging in again brings it back.
 */
export function keyOf(e) {
  const key = e instanceof ApiError ? e.key : 'errUnknown';
  if (key === 'errSession') hooks.sessionLost();
  return key;
}

/** Draws `text` as a QR code into `box` (the encoder loads only when needed). */
export function drawQr(box, text, labelKey) {
  import('./vendor/qr/index.js')
    .then(({ encodeQR }) => {
      box.innerHTML = encodeQR(text, 'svg', { ecc: 'medium', border: 2 });
      const svg = box.querySelector('svg');
      svg.setAttribute('role', 'img');
      svg.setAttribute('aria-label', t(labelKey));
    })
    .catch(() => box.replaceChildren(h('p', { class: 'hint', text: t('qrMissing') })));
  return box;
}

/** Starts a download of `blob` as `name`. */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// ---------------------------------------------------------------- rendering

/** Shows a screen; `keep` puts back the values of the previous one (language switch). */
export function show(screen, args = {}, { keep = false, notice = null, values = null } = {}) {
  const saved = values ?? (keep ? snapshot() : null);
  const error = keep ? current?.error : null;
  for (const f of current?.cleanup ?? []) f();
  current = { screen, args, error, notice: keep ? current?.notice : notice, cleanup: [] };
  main.replaceChildren(screen(args));
  if (saved) restore(saved);
  const n = document.getElementById('notice');
  if (n && current.notice) n.textContent = t(current.notice, args);
  if (current.error) {
    const box = document.getElementById('form-error');
    if (box) box.textContent = t(current.error);
  }
  hooks.renderBar();
  if (!keep) main.querySelector('h1')?.focus();
  main.dispatchEvent(new CustomEvent('coffre:screen', { bubbles: true }));
}

/** Runs `f` when the current screen goes away (object URLs, timers). */
export function onLeave(f) {
  current.cleanup.push(f);
}

export function snapshot() {
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
