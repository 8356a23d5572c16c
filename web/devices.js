// "Mes appareils" (#/devices): the devices signed in to the person's account
// (GET /api/v1/me/sessions), signing one out, or all the others, and signing out here.

import { t, formatTs, formatFull } from './i18n.js';
import { h, setChildren, icon } from './dom.js';

// A modal question; resolves true (yes) or false. The safe answer has the focus.
export function confirmDialog({ title, body, yes, no, className = '' }) {
  const titleId = `confirm-${Math.random().toString(36).slice(2)}`;
  const yesButton = h('button', { type: 'button', class: 'btn btn-danger' }, yes);
  const noButton = h('button', { type: 'button', class: 'btn' }, no);
  const dialog = h('dialog', { class: `card signin-link ${className}`.trim(), 'aria-labelledby': titleId },
    h('h2', { id: titleId }, title),
    h('p', {}, body),
    h('p', { class: 'actions' }, yesButton, ' ', noButton));
  document.body.append(dialog);
  return new Promise((resolve) => {
    yesButton.addEventListener('click', () => dialog.close('yes'));
    noButton.addEventListener('click', () => dialog.close('no'));
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(dialog.returnValue === 'yes');
    });
    dialog.showModal();
    noButton.focus();
  });
}

export function devicesView(ctx) {
  const list = h('div', { class: 'devices-body' }, h('p', { class: 'muted' }, t('devices.loading')));
  const status = h('p', { class: 'form-status', role: 'status' });
  const el = h('div', { class: 'view view-devices' },
    h('h1', { class: 'view-title', tabindex: '-1' }, t('devices.title')),
    h('p', { class: 'muted' }, t('devices.intro')),
    list, status);
  let destroyed = false;
  const say = (text, error = false) => {
    status.className = error ? 'form-status error' : 'form-status';
    status.textContent = text;
  };

  async function load() {
    let sessions;
    try {
      sessions = (await ctx.auth.api('/me/sessions')).sessions || [];
    } catch {
      if (destroyed) return;
      setChildren(list, h('p', { class: 'card notice error' }, t('devices.error')),
        h('button', { type: 'button', class: 'btn', onclick: load }, t('devices.retry')));
      return;
    }
    if (destroyed) return;
    sessions.sort((a, b) => (b.current - a.current) || String(b.last_seen).localeCompare(String(a.last_seen)));
    const others = sessions.filter((s) => !s.current);
    setChildren(list,
      h('ul', { class: 'plain devices' }, sessions.map((s) => row(s))),
      others.length
        ? h('p', { class: 'actions' }, h('button', { type: 'button', class: 'btn end-others', onclick: endOthers }, t('devices.endOthers')))
        : h('p', { class: 'muted' }, t('devices.none')));
  }

  function row(s) {
    const created = Date.parse(s.created_at);
    const seen = Date.parse(s.last_seen);
    return h('li', { class: `card device${s.current ? ' current' : ''}`, 'data-session': s.id },
      h('div', { class: 'device-text' },
        h('p', { class: 'device-name' }, icon('📱'), ' ', h('strong', {}, s.device || '—'),
          s.current ? h('span', { class: 'badge this-device' }, t('devices.this')) : null),
        Number.isFinite(created) ? h('p', { class: 'muted' }, h('time', { datetime: s.created_at, title: formatFull(created) },
          t('devices.since', { date: formatFull(created) }))) : null,
        Number.isFinite(seen) ? h('p', { class: 'muted' }, h('time', { datetime: s.last_seen, title: formatFull(seen) },
          t('devices.lastSeen', { when: formatTs(seen) }))) : null),
      s.current
        ? h('button', { type: 'button', class: 'btn btn-danger', onclick: () => ctx.confirmSignOut() }, t('header.signOut'))
        : h('button', {
          type: 'button', class: 'btn', 'aria-label': t('devices.endLabel', { device: s.device }),
          onclick: (ev) => endOne(s, ev.currentTarget),
        }, t('devices.end')));
  }

  async function endOne(s, button) {
    button.disabled = true;
    try {
      await ctx.auth.api(`/me/sessions/${encodeURIComponent(s.id)}`, { method: 'DELETE' });
      say(t('devices.ended', { device: s.device }));
    } catch (err) {
      if (err.status !== 404) { // 404: it had ended already
        button.disabled = false;
        say(t('devices.failed'), true);
        return;
      }
    }
    if (!destroyed) load();
  }

  async function endOthers() {
    const yes = await confirmDialog({
      title: t('devices.endOthersTitle'), body: t('devices.endOthersBody'),
      yes: t('devices.endOthersYes'), no: t('msg.cancel'),
    });
    if (!yes || destroyed) return;
    try {
      const { ended } = await ctx.auth.api('/me/sessions', { method: 'DELETE' });
      say(ended ? t('devices.endedOthers', { count: ended }) : t('devices.none'));
    } catch {
      say(t('devices.failed'), true);
    }
    if (!destroyed) load();
  }

  if (ctx.auth) load();
  else setChildren(list, h('p', { class: 'card notice' }, t('devices.demo')));
  return { el, update() {}, destroy() { destroyed = true; } };
}
