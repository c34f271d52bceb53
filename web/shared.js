// A session on a shared computer (loaded only after such a login): the vault locks after
// five minutes without use, with a countdown in the last minute that any use resets,
// and closing the tab ends the session on the server. See docs/web.md, "Shared computer".

import { h, t, lang, loadMore } from './ui.js';

await loadMore();

/** Unused this long, the vault locks (ms). */
export const IDLE_MS = 5 * 60_000;
/** The countdown shows this long before (ms). */
const WARN_MS = 60_000;
/** What counts as use: a touch, a click, a key, the wheel (a mouse passing by, or the page
 * resized, does not). */
const USE = ['pointerdown', 'keydown', 'wheel', 'touchstart', 'input'];

let stopCurrent = null;

/**
 * Watches this session: `lock(notice, keepalive)` (app.js) ends it after IDLE_MS without
 * use, and when the page is hidden for good (tab closed, navigated off, put in the
 * back-forward cache), then with `keepalive` so that the logout outlives the page.
 */
export function watch(lock) {
  stopCurrent?.();
  let last = Date.now();
  const banner = h('section', { id: 'idle-warning', class: 'idle', hidden: true, 'aria-labelledby': 'idle-title' },
    h('p', { id: 'idle-title', class: 'idle-title', 'aria-live': 'polite', 'aria-atomic': 'true' }),
    // The clock: seen, not read out every second (the line above says it in words).
    h('p', { class: 'idle-clock', 'aria-hidden': 'true' }, h('bdi', { id: 'idle-seconds' })),
    h('button', { type: 'button', id: 'idle-stay', text: t('idleStay'), onclick: () => used() }),
  );
  document.body.append(banner);
  const used = () => {
    last = Date.now();
    banner.hidden = true;
  };
  const tick = () => {
    const left = IDLE_MS - (Date.now() - last);
    if (left <= 0) {
      stop();
      lock('lockedIdle');
      return;
    }
    if (left > WARN_MS) return;
    const seconds = Math.ceil(left / 1000);
    const nf = new Intl.NumberFormat(lang(), { minimumIntegerDigits: 2 });
    banner.querySelector('#idle-seconds').textContent = `${new Intl.NumberFormat(lang()).format(0)}:${nf.format(seconds)}`;
    // Said in words when it starts and at 30 and 10 seconds, not at every tick (and
    // again in a language chosen meanwhile).
    const step = seconds > 30 ? 60 : seconds > 10 ? 30 : 10;
    const words = t('idleWarning', { seconds: new Intl.NumberFormat(lang()).format(step) });
    const title = banner.querySelector('#idle-title');
    if (title.textContent !== words) title.textContent = words;
    const stay = banner.querySelector('#idle-stay');
    if (stay.textContent !== t('idleStay')) stay.textContent = t('idleStay');
    banner.hidden = false;
  };
  const timer = setInterval(tick, 1000);
  // Hidden for good or into the back-forward cache: either way the session ends now and
  // the screen is cleared, so a page brought back shows the login screen.
  const hide = () => {
    stop();
    lock('loggedOut', true);
  };
  for (const e of USE) addEventListener(e, used, { capture: true, passive: true });
  addEventListener('pagehide', hide);
  function stop() {
    clearInterval(timer);
    for (const e of USE) removeEventListener(e, used, { capture: true });
    removeEventListener('pagehide', hide);
    banner.remove();
    stopCurrent = null;
  }
  stopCurrent = stop;
}

/** Stops watching (a logout). */
export function stop() {
  stopCurrent?.();
}
