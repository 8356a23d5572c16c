// Scheduled posts (issue 12) in the composer: during the school's quiet hours a teacher or
// director is offered "Envoyer à 07:30" (the end of the quiet time + 30 min) or a time of
// their choice, besides sending now; and the list of their scheduled posts with "Annuler".
// Server side: GET /api/v1/schools/{id}/quiet-hours (quiet_now, suggested_at), the WebSocket
// `publish` with `at`, `scheduled` and `cancel_scheduled` (docs/protocol.md).

import { t, formatFull, formatClock } from './i18n.js';
import { h, setChildren, newId, icon } from './dom.js';

const API = '/api/v1';
const QUIET_TTL = 60_000; // ms the quiet-hours answer is reused

// A user route with the session's token (a device session's is renewed once on 401).
export async function userApi(ctx, path, { method = 'GET', body = null } = {}) {
  for (let attempt = 0; ; attempt++) {
    const token = ctx.auth?.token ?? ctx.conn.token;
    const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
    if (body) headers['content-type'] = 'application/json';
    const res = await fetch(API + path, { method, headers, cache: 'no-store', body: body ? JSON.stringify(body) : null });
    if (res.status === 401 && attempt === 0 && ctx.auth && (await ctx.auth.refresh().catch(() => false))) continue;
    let data = null;
    try { data = await res.json(); } catch { /* no JSON */ }
    if (!res.ok) {
      const err = new Error(data?.error?.message || String(res.status));
      err.status = res.status;
      err.code = data?.error?.code;
      throw err;
    }
    return data;
  }
}

let quietCache = null; // {at, school, value}

// The school's quiet hours and where now stands; null when unknown (offline, no school).
export async function quietNow(ctx) {
  const school = ctx.dir.school?.id;
  if (!school) return null;
  if (quietCache && quietCache.school === school && Date.now() - quietCache.at < QUIET_TTL) return quietCache.value;
  try {
    const value = await userApi(ctx, `/schools/${encodeURIComponent(school)}/quiet-hours`);
    quietCache = { at: Date.now(), school, value };
    return value;
  } catch {
    return null;
  }
}

// "YYYY-MM-DDTHH:MM" in local time, for a datetime-local input.
function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

// The composer's extra actions. `send(at)` publishes (at = ms, or null for now) and resolves
// when done. Shown only to staff; the quiet-hours offer only during the quiet hours.
export function scheduleActions(ctx, send) {
  const offer = h('div', { class: 'schedule-offer', hidden: true });
  const pickId = newId('at');
  const picker = h('input', { type: 'datetime-local', id: pickId, name: 'at' });
  const chooser = h('div', { class: 'field schedule-pick', hidden: true },
    h('label', { for: pickId }, t('schedule.pickLabel')), picker,
    h('button', { type: 'button', class: 'btn', onclick: () => {
      const at = picker.value ? new Date(picker.value).getTime() : NaN;
      if (!Number.isFinite(at) || at <= Date.now()) {
        picker.setCustomValidity(t('schedule.pickFuture'));
        picker.reportValidity();
        return;
      }
      picker.setCustomValidity('');
      send(at);
    } }, t('schedule.pickSubmit')));
  const toggle = h('button', { type: 'button', class: 'btn', 'aria-expanded': 'false', onclick: () => {
    chooser.hidden = !chooser.hidden;
    toggle.setAttribute('aria-expanded', String(!chooser.hidden));
    if (!chooser.hidden) {
      if (!picker.value) picker.value = localInput(Date.now() + 3_600_000);
      picker.focus();
    }
  } }, icon('🕒'), ' ', t('schedule.choose'));
  const el = h('div', { class: 'schedule-actions' }, offer, toggle, chooser);

  async function refresh() {
    const quiet = await quietNow(ctx);
    if (!quiet?.quiet_now || !quiet.suggested_at) {
      offer.hidden = true;
      return;
    }
    const at = quiet.suggested_at;
    setChildren(offer,
      h('p', { class: 'hint' }, icon('🌙'), ' ', t('schedule.quietNow', { time: formatClock(new Date(quiet.release_at)) })),
      h('button', { type: 'button', class: 'btn btn-primary schedule-morning', onclick: () => send(at) },
        t('schedule.sendAt', { time: formatClock(new Date(at)) })));
    offer.hidden = false;
  }
  refresh();
  return { el, refresh };
}

// "Publications programmées": the author's scheduled posts, with "Annuler" on each.
export function scheduledList(ctx) {
  const body = h('ul', { class: 'plain scheduled-posts' });
  const status = h('p', { class: 'form-status', role: 'status' });
  const el = h('details', { class: 'card scheduled', hidden: true },
    h('summary', {}, icon('🕒'), ' ', h('span', { class: 'scheduled-count' })), body, status);

  function describe(p) {
    const words = p.data?.title || p.data?.text || '';
    return words.length > 80 ? `${words.slice(0, 79)}…` : words;
  }

  async function load() {
    let posts;
    try {
      posts = (await ctx.conn.request('scheduled', {})).posts || [];
    } catch {
      return;
    }
    el.hidden = posts.length === 0;
    el.querySelector('.scheduled-count').textContent = t('schedule.listTitle', { count: posts.length });
    setChildren(body, posts.map((p) => h('li', { class: 'scheduled-post' },
      h('span', { class: 'when' }, formatFull(p.at)), ' — ',
      h('span', { class: 'where muted' }, ctx.dir.channelTitle?.(p.channel) ?? p.channel), ' ',
      h('span', { class: 'what' }, describe(p)), ' ',
      h('button', { type: 'button', class: 'btn btn-small', onclick: () => cancel(p) }, t('schedule.cancel')))));
  }

  async function cancel(p) {
    try {
      await ctx.conn.request('cancel_scheduled', { scheduled: p.id });
      status.className = 'form-status';
      status.textContent = t('schedule.cancelled');
    } catch (err) {
      status.className = 'form-status error';
      status.textContent = err?.code === 'conflict' ? t('schedule.tooLate') : t('error.generic');
    }
    load();
  }

  load();
  return { el, load };
}
