// Screens of recovery through referents: the person's referents and new kit, the warning
// on the person's devices, a new device asking and waiting, and the referent's check.
// screens.js passes in what they share with the other screens (`ctx`).

import * as vault from './vault.js';
import * as rec from './recovery.js';
import {
  h, t, date, field, select, alertBox, noticeBox, showError, clearError, showNotice, busy, keyOf, show,
  onLeave, hooks, HANDLE_RE,
} from './ui.js';

/** Filled by screens.js: { fingerprintBox, secretChooser, recoveryKitScreen, homeScreen, workerHome }. */
export const ctx = {};

const nowS = () => Math.floor(Date.now() / 1000);
const hours = (s) => Math.round(s / 3600);

/** Runs `f` every `ms` while the screen is shown. */
function every(ms, f) {
  const timer = setInterval(f, ms);
  onLeave(() => clearInterval(timer));
}

// ---------------------------------------------------------------- the person

/** The warning shown on every logged-in device while someone asks to recover the vault. */
export function recoveryWarning() {
  const box = h('div', { id: 'recovery-warning', class: 'confirm', hidden: true, role: 'alert' });
  const refresh = () =>
    rec.myRecoveryRequests().then((requests) => {
      const open = requests.find((r) => r.state === 'open');
      if (!open) {
        box.hidden = true;
        return box.replaceChildren();
      }
      box.hidden = false;
      box.replaceChildren(...[
        h('p', { id: 'recovery-warning-text', text: t('recoveryWarning', { date: date(open.created_at) }) }),
        open.releasable_at && h('p', { class: 'hint', text: t('recoveryWarningWhen', { date: date(open.releasable_at) }) }),
        h('button', { type: 'button', class: 'danger', id: 'recovery-cancel', text: t('recoveryNotMe'), onclick: async (ev) => {
          ev.currentTarget.disabled = true; // rebuilt by refresh() whatever happens
          try {
            await rec.cancelMyRecovery(open.id);
            showNotice('recoveryCancelled');
          } catch (e) {
            showError(keyOf(e));
          }
          refresh();
        } }),
      ].filter(Boolean));
    }, (e) => {
      // An ended session goes back to the login screen; anything else waits for the next try.
      if (e.key === 'errSession') keyOf(e);
    });
  refresh();
  every(15_000, refresh);
  return box;
}

/** On the person's home: how many referents can still help, when some left. */
export function referentsNotice() {
  const box = h('div', { id: 'referents-left-warning', class: 'confirm', hidden: true, role: 'status' });
  rec.myReferents().then((v) => {
    if (!v.threshold || v.active >= v.referents.length) return;
    box.hidden = false;
    box.replaceChildren(
      h('p', { text: t(v.active < v.threshold ? 'referentsTooFew' : 'referentsLeft', { n: v.active }) }),
      h('button', { type: 'button', class: 'secondary', id: 'to-referents-now', text: t('myReferents'), onclick: () => show(referentsScreen) }),
    );
  }, () => {});
  return box;
}

/** On a worker's home: the people they are referent of who lost some referents. */
export function referentOfList() {
  const box = h('div', { id: 'referent-of' });
  rec.referentOf().then((people) => {
    const short = people.filter((p) => p.active < p.referents);
    if (!short.length) return;
    box.replaceChildren(
      h('h2', { text: t('referentOfTitle') }),
      h('ul', { class: 'shares' }, short.map((p) => h('li', { 'data-id': p.account_id, text: t('referentOfLeft', { handle: p.handle, n: p.active }) }))),
    );
  }, () => {});
  return box;
}

/** The person's referents, and choosing them again (each checked with the safety words). */
export function referentsScreen({ chosen = null, found = null, threshold = null } = {}) {
  const list = h('div', { id: 'referents', 'aria-busy': 'true' }, h('p', { class: 'status', text: t('loading') }));
  const fresh = chosen === null;
  rec.myReferents().then((v) => {
    if (fresh) {
      // The list to change starts as the referents who can still help (checked with the
      // safety words when they were chosen): adding or removing one deals again to all.
      const kept = v.referents.filter((r) => r.active).map((r) => ({ id: r.id, handle: r.handle, publicKey: r.public_key }));
      return show(referentsScreen, { chosen: kept, threshold: v.threshold ? Math.min(v.threshold, kept.length) || null : null }, { keep: true });
    }
    list.removeAttribute('aria-busy');
    if (!v.threshold) return list.replaceChildren(h('p', { id: 'no-referents', text: t('noReferents') }));
    list.replaceChildren(...[
      h('p', { id: 'referents-rule', text: t('referentsRule', { k: v.threshold, n: v.referents.length, hours: hours(v.delay_seconds) }) }),
      v.active < v.referents.length && h('p', { class: 'error', id: 'referents-left', text: t('referentsLeft', { n: v.active }) }),
      h('ul', { class: 'shares', id: 'referent-list' }, v.referents.map((r) => h('li', { 'data-id': r.id },
        h('span', { text: r.org_name ? t('referentAt', { handle: r.handle ?? '?', org: r.org_name }) : r.handle ?? '?' })))),
    ].filter(Boolean));
  }, (e) => {
    list.removeAttribute('aria-busy');
    showError(keyOf(e));
  });
  chosen ??= [];
  const again = (args) => show(referentsScreen, { chosen, found: null, threshold, ...args });
  const find = h('form', { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    const handle = find.handle.value.trim().toLowerCase();
    if (!HANDLE_RE.test(handle)) return showError('errHandle', 'handle');
    if (chosen.some((c) => c.handle === handle)) return showError('errAlreadyChosen', 'handle');
    try {
      const who = await busy(find, () => vault.findAccount(handle));
      show(referentsScreen, { chosen, found: who, threshold });
    } catch (e) {
      showError(keyOf(e), 'handle');
    }
  } },
    field('handle', 'referentHandle', { autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', required: true }, 'referentHandleHint'),
    h('button', { type: 'submit', id: 'find-referent', class: 'secondary', text: t('findWorker') }),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  const check = found && h('div', { class: 'stack', id: 'referent-check' },
    h('h2', { text: t('checkWords') }),
    h('p', { text: t('checkWordsHow', { handle: found.handle }) }),
    ctx.fingerprintBox(found, 'their-fingerprint', { scan: true, guard: 'referent-same' }),
    h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'referent-same', text: t('referentWordsSame'), onclick: () => again({ chosen: [...chosen, found], threshold: null }) }),
      h('button', { type: 'button', class: 'secondary danger', id: 'referent-different', text: t('wordsDifferent'), onclick: () => again({}) }),
    ),
  );
  const k = threshold ?? Math.min(2, chosen.length);
  const save = chosen.length > 0 && h('form', { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    const want = Number(save.threshold.value);
    try {
      await busy(save, () => rec.chooseReferents(chosen, want));
    } catch (e) {
      return showError(keyOf(e));
    }
    show(referentsScreen, {}, { notice: 'referentsSaved' });
  } },
    h('h2', { text: t('newReferents') }),
    h('ul', { class: 'shares', id: 'chosen-referents' }, chosen.map((c, i) => h('li', {},
      h('span', { text: c.handle }),
      h('button', { type: 'button', class: 'secondary', 'aria-label': t('removeReferentNamed', { handle: c.handle }), text: t('removeReferent'),
        onclick: () => again({ chosen: chosen.filter((_, j) => j !== i), threshold: null }) }),
    ))),
    select('threshold', 'thresholdLabel', chosen.map((_, i) => [String(i + 1), 'thresholdOf']), String(k)),
    h('p', { class: 'hint', id: 'threshold-hint', text: t(k === 1 ? 'thresholdOneHint' : 'thresholdHint') }),
    h('button', { type: 'submit', id: 'referents-save', text: t('saveReferents') }),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  // The threshold options read "1 of 3", "2 of 3"…
  queueMicrotask(() => {
    for (const o of document.querySelectorAll('#threshold option')) o.textContent = t('thresholdOption', { k: o.value, n: chosen.length });
  });
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('referentsTitle') }),
    h('p', { class: 'lead', text: t('referentsIntro') }),
    noticeBox(),
    alertBox(),
    list,
    h('h2', { text: t('chooseReferents') }),
    find,
    check,
    save,
    h('button', { type: 'button', class: 'secondary', text: t('back'), onclick: () => show(ctx.homeScreen()) }),
  );
}

/** A new recovery kit for oneself: the old paper stops working. */
export async function printNewKit(button) {
  clearError();
  button.disabled = true;
  try {
    const code = await rec.newKit();
    show(ctx.recoveryKitScreen, { handle: vault.currentAccount().handle, code, own: true });
  } catch (e) {
    button.disabled = false;
    showError(keyOf(e));
  }
}

// ---------------------------------------------------------------- the asking device

/** "I lost my PIN and my paper": ask on this device, or see the request it waits on. */
export function askRecoveryScreen({ handle = '' } = {}) {
  const pending = rec.pendingRequest();
  if (pending) return waitingScreen({ pending });
  const form = h('form', { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    const name = form.handle.value.trim().toLowerCase();
    if (!HANDLE_RE.test(name)) return showError('errHandle', 'handle');
    try {
      const made = await busy(form, async () => {
        await vault.ready();
        return rec.askRecovery(name);
      });
      show(waitingScreen, { pending: made });
    } catch (e) {
      showError(keyOf(e), 'handle');
    }
  } },
    field('handle', 'handle', { autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true, value: handle || null }),
    alertBox(),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: 'ask-submit', text: t('askRecoveryButton') }),
      h('button', { type: 'button', class: 'secondary', text: t('back'), onclick: () => show(hooks.loginScreen) }),
    ),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('askRecoveryTitle') }),
    h('p', { class: 'lead', text: t('askRecoveryIntro') }),
    form,
  );
}

/** The asking device while the referents decide and the delay runs; then the new secret. */
function waitingScreen({ pending }) {
  const status = h('p', { id: 'request-status', 'aria-live': 'polite', text: t('loading') });
  const end = h('div', { id: 'request-end' });
  const chooser = ctx.secretChooser('new');
  const finishForm = h('form', { novalidate: true, id: 'finish-form', hidden: true, oninput: () => chooser.update(), onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    const secret = chooser.check(finishForm);
    if (secret === null) return;
    let done;
    try {
      done = await busy(finishForm, () => rec.finishRecovery(pending, secret));
    } catch (e) {
      if (e.wrong?.length) {
        // Which referent sent a wrong part, so that the person can ask another one.
        showError('errRecoveryWrongShare');
        return document.getElementById('form-error')?.append(' ', t('wrongShareFrom', { handles: e.wrong.join(', ') }));
      }
      return showError(keyOf(e));
    }
    show(ctx.recoveryKitScreen, { handle: pending.handle, code: done.code, own: true, recovered: true });
  } },
    h('h2', { text: t('recoveryReady') }),
    chooser.nodes,
    alertBox(),
    h('button', { type: 'submit', id: 'finish-submit', text: t('recoverButton') }),
    h('p', { class: 'status', 'aria-live': 'polite' }),
  );
  const refresh = async () => {
    let r;
    try {
      r = await rec.requestStatus(pending);
    } catch (e) {
      status.textContent = t(keyOf(e));
      return;
    }
    if (r.state !== 'open') {
      status.textContent = t(`recoveryState_${r.state}`);
      finishForm.hidden = true;
      end.replaceChildren(h('button', { type: 'button', id: 'ask-again', text: t('askAgain'), onclick: () => {
        rec.forgetRequest();
        show(askRecoveryScreen, { handle: pending.handle });
      } }));
      return;
    }
    if (r.releasable_at && r.releasable_at <= nowS()) {
      status.textContent = t('recoveryApproved', { count: r.approvals });
      if (finishForm.hidden) {
        finishForm.hidden = false;
        chooser.update();
      }
    } else if (r.releasable_at) {
      status.textContent = t('recoveryDelay', { count: r.approvals, date: date(r.releasable_at) });
    } else {
      status.textContent = t('recoveryWaiting', { count: r.approvals });
    }
  };
  refresh();
  every(5_000, refresh);
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('waitingTitle', { handle: pending.handle }) }),
    h('ol', {},
      h('li', { text: t('waitingStep1') }),
      h('li', { text: t('waitingStep2') }),
      h('li', { text: t('waitingStep3') }),
    ),
    h('h2', { text: t('myRequestWords') }),
    ctx.fingerprintBox(rec.fingerprintOfKey(pending.key), 'request-fingerprint'),
    status,
    h('button', { type: 'button', class: 'secondary', id: 'request-refresh', text: t('refresh'), onclick: refresh }),
    noticeBox(),
    finishForm,
    end,
    h('button', { type: 'button', class: 'secondary danger', id: 'abandon', text: t('abandonRequest'), onclick: async () => {
      await rec.abandonRequest(pending);
      show(hooks.loginScreen);
    } }),
  );
}

// ---------------------------------------------------------------- referents

/** The worker's list of requests they are referent of (on their home screen). */
export function asksList() {
  const box = h('div', { id: 'asks' });
  const refresh = () =>
    rec.myAsks().then((asks) => {
      box.replaceChildren(...(asks.length ? [
        h('h2', { text: t('asksTitle') }),
        h('ul', { class: 'docs' }, asks.map((a) => h('li', {},
          h('button', { type: 'button', class: 'doc ask', 'data-id': a.id, onclick: () => show(askScreen, { id: a.id }) },
            h('span', { class: 'name', text: t('askFrom', { handle: a.handle }) }),
            h('span', { class: 'hint', text: a.my_decision ? t(`decision_${a.my_decision}`) : t('askOn', { date: date(a.created_at) }) }),
          )))),
      ] : []));
    }, () => {});
  refresh();
  every(15_000, refresh);
  return box;
}

/** One request: check the person, compare the words, decide. */
function askScreen({ id }) {
  const body = h('div', { class: 'stack', id: 'ask-body', 'aria-busy': 'true' }, h('p', { class: 'status', text: t('loading') }));
  const decided = (key) => show(ctx.workerHome, {}, { notice: key });
  const act = (f, key) => async (ev) => {
    clearError();
    const button = ev.currentTarget; // null once the event is handled
    button.disabled = true;
    try {
      await f();
    } catch (e) {
      button.disabled = false;
      return showError(keyOf(e));
    }
    decided(key);
  };
  rec.oneAsk(id).then((a) => {
    body.removeAttribute('aria-busy');
    body.replaceChildren(
      h('h1', { tabindex: '-1', text: t('askTitle', { handle: a.handle }) }),
      h('p', { class: 'lead', text: t('askIntro', { handle: a.handle, date: date(a.created_at) }) }),
      alertBox(),
      h('ol', {},
        h('li', { text: t('askStep1', { handle: a.handle }) }),
        h('li', { text: t('askStep2') }),
      ),
      ctx.fingerprintBox(a, 'request-fingerprint', { scan: true, guard: 'ask-approve' }),
      h('p', { id: 'ask-count', text: t('askCount', { count: a.approvals, k: a.threshold }) }),
      h('div', { class: 'actions' },
        a.my_decision === null && h('button', { type: 'button', id: 'ask-approve', text: t('askApprove'), onclick: act(() => rec.approveAsk(a), 'askApproved') }),
        a.my_decision === null && h('button', { type: 'button', class: 'secondary danger', id: 'ask-refuse', text: t('askRefuse'), onclick: act(() => rec.refuseAsk(a), 'askRefused') }),
        a.my_decision === 'approved' && h('button', { type: 'button', class: 'secondary danger', id: 'ask-withdraw', text: t('askWithdraw'), onclick: act(() => rec.withdrawAsk(a), 'askWithdrawn') }),
        h('button', { type: 'button', class: 'secondary', text: t('back'), onclick: () => show(ctx.workerHome) }),
      ),
    );
    body.querySelector('h1')?.focus();
  }, (e) => {
    body.removeAttribute('aria-busy');
    body.replaceChildren(h('h1', { tabindex: '-1', text: t('askGoneTitle') }), h('p', { class: 'error', id: 'form-error', role: 'alert', text: t(keyOf(e)) }));
  });
  return body;
}
