// "Where I am signed in": the person's sessions, from any device, and closing one or all
// others (a shelter computer left signed in, a lost phone). The server names each session
// by a public id, never its token, and gives a coarse device label ("Chrome on Android").

import { request } from './api.js';
import { h, t, lang, show, showError, showNotice, clearError, keyOf, noticeBox, alertBox, loadMore } from './ui.js';

await loadMore();

/** A time (unix seconds) as day and hour in the current language. */
const when = (seconds) =>
  new Date(seconds * 1000).toLocaleString(lang(), { day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit' });

export function sessionsScreen({ back }) {
  const list = h('div', { id: 'sessions', 'aria-busy': 'true' }, h('p', { class: 'status', text: t('loading') }));
  const others = h('button', { type: 'button', class: 'secondary danger', id: 'close-others', hidden: true, text: t('sessionsCloseOthers'), onclick: () => act(() => request('POST', '/v1/me/sessions/close-others'), 'sessionsClosed') });
  const act = async (work, notice) => {
    clearError();
    try {
      await work();
    } catch (e) {
      showError(keyOf(e));
      if (e.key !== 'errSessionGone') return;
    }
    if (notice) showNotice(notice);
    load();
  };
  const row = (s) =>
    h('li', { class: 'session-item', 'data-id': s.id },
      h('div', {},
        h('p', { class: 'name' }, h('bdi', { text: s.device || t('sessionUnknownDevice') })),
        s.current ? h('p', { class: 'badge', text: t('sessionThis') }) : '',
        s.shared_computer ? h('p', { class: 'badge', text: t('sessionShared') }) : '',
        h('p', { class: 'hint', text: t('sessionTimes', { created: when(s.created_at), used: when(s.last_used_at) }) }),
      ),
      s.current
        ? ''
        : h('button', { type: 'button', class: 'secondary danger', text: t('sessionClose'), 'aria-label': t('sessionCloseNamed', { device: s.device || t('sessionUnknownDevice') }),
          onclick: () => act(() => request('DELETE', `/v1/me/sessions/${s.id}`, { problems: { 'session-not-found': 'errSessionGone' } }), 'sessionClosed') }),
    );
  const load = () =>
    request('GET', '/v1/me/sessions').then(
      (all) => {
        list.removeAttribute('aria-busy');
        list.replaceChildren(h('ul', { class: 'shares' }, all.map(row)));
        others.hidden = !all.some((s) => !s.current);
      },
      (e) => {
        list.removeAttribute('aria-busy');
        list.replaceChildren();
        showError(keyOf(e));
      },
    );
  load();
  return h('div', { class: 'stack' },
    h('h1', { tabindex: '-1', text: t('sessionsTitle') }),
    h('p', { class: 'lead', text: t('sessionsIntro') }),
    noticeBox(),
    alertBox(),
    list,
    h('div', { class: 'actions' },
      others,
      h('button', { type: 'button', class: 'secondary', id: 'sessions-back', text: t('back'), onclick: () => show(back) }),
    ),
  );
}
