// "Tableau de bord" (#/board): the director's board of the school, a teacher's view of their
// classes (issue 17). Figures per class (families reached, never signed in, not notifiable,
// read nothing for 30 days, how many families saw the last posts, the week), the
// announcements still unread with "Relancer par e-mail", and the lists of families to phone,
// each with "Exporter (CSV)" and, per family, "Ouvrir une conversation".
// Server side: GET /api/v1/board/schools/{id}, /board/classes/{id}, their /families.csv, and
// POST /api/v1/board/reminders (docs/http-api.md, "The board").

import { t, formatTs, formatFull } from './i18n.js';
import { h, setChildren, icon } from './dom.js';
import { retentionNotice } from './retention.js';

const API = '/api/v1';
const LISTS = ['never_signed_in', 'not_notifiable', 'inactive'];

// A user route with the session's token (a device session's is renewed once on 401).
async function request(ctx, path, { method = 'GET', body = null, raw = false } = {}) {
  for (let attempt = 0; ; attempt++) {
    const token = ctx.auth?.token ?? ctx.conn.token;
    const headers = { authorization: `Bearer ${token}`, accept: raw ? 'text/csv' : 'application/json' };
    if (body) headers['content-type'] = 'application/json';
    const res = await fetch(API + path, { method, headers, cache: 'no-store', body: body ? JSON.stringify(body) : null });
    if (res.status === 401 && attempt === 0 && ctx.auth && (await ctx.auth.refresh().catch(() => false))) continue;
    if (!res.ok) {
      let data = null;
      try { data = await res.json(); } catch { /* no JSON */ }
      const err = new Error(data?.error?.message || String(res.status));
      err.status = res.status;
      err.reason = data?.error?.reason ?? null;
      err.retryAt = data?.error?.retry_at ?? null;
      throw err;
    }
    return raw ? res : res.json();
  }
}

const percent = (share) => (share === null || share === undefined ? '—' : `${Math.round(share * 100)} %`);

function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 60) return t('board.seconds', { count: Math.round(seconds) });
  if (seconds < 3600) return t('board.minutes', { count: Math.round(seconds / 60) });
  if (seconds < 86_400) return t('board.hours', { count: Math.round(seconds / 3600) });
  return t('board.days', { count: Math.round(seconds / 86_400) });
}

export function boardView(ctx) {
  const { dir } = ctx;
  const director = dir.me.role === 'director';
  const body = h('div', { class: 'board-body' }, h('p', { class: 'muted loading' }, t('app.loading')));
  const status = h('p', { class: 'form-status', role: 'status' });
  const el = h('div', { class: 'view view-board' },
    h('h1', { class: 'view-title', tabindex: '-1' }, t('board.title')),
    h('p', { class: 'muted subtitle' }, director ? t('board.introSchool', { school: dir.school?.name ?? '' }) : t('board.introClass')),
    status, body);
  let destroyed = false;
  const say = (text, error = false) => {
    status.className = error ? 'form-status error' : 'form-status';
    status.textContent = text;
  };

  async function load() {
    let boards;
    try {
      if (director) boards = [await request(ctx, `/board/schools/${encodeURIComponent(dir.school.id)}`)];
      else {
        const mine = [...dir.classes.values()].filter((c) => (c.teachers || []).some((u) => u.id === dir.me.id));
        boards = await Promise.all(mine.map((c) => request(ctx, `/board/classes/${encodeURIComponent(c.id)}`)));
      }
    } catch {
      if (destroyed) return;
      setChildren(body, h('p', { class: 'card notice error' }, t('board.error')),
        h('button', { type: 'button', class: 'btn', onclick: load }, t('devices.retry')));
      return;
    }
    if (destroyed) return;
    if (director) {
      const b = boards[0];
      setChildren(body, totals(b.totals), classTable(b.classes), announcements(b.announcements),
        lists(b.families, `/board/schools/${encodeURIComponent(b.school)}/families.csv`),
        retentionNotice(ctx, b.school)); // the school year and what will be purged (issue 15)
    } else {
      setChildren(body, boards.map((b) => h('section', { class: 'board-class', 'aria-labelledby': `board-${b.class}` },
        h('h2', { id: `board-${b.class}` }, b.name),
        classTable([b.figures]),
        lastPosts(b.figures),
        lists(b.families, `/board/classes/${encodeURIComponent(b.class)}/families.csv`))));
    }
  }

  function figure(label, value, warn = false) {
    return h('li', { class: `card figure${warn ? ' warn' : ''}` }, h('span', { class: 'figure-value' }, String(value)), h('span', { class: 'figure-label' }, label));
  }

  function totals(x) {
    return h('section', { 'aria-labelledby': 'board-school' },
      h('h2', { id: 'board-school', class: 'sr-only' }, t('board.school')),
      h('ul', { class: 'plain figures' },
        figure(t('board.families'), x.families),
        figure(t('board.neverSignedIn'), x.families_never_signed_in, x.families_never_signed_in > 0),
        figure(t('board.notNotifiable'), x.families_not_notifiable, x.families_not_notifiable > 0),
        figure(t('board.inactive'), x.families_inactive, x.families_inactive > 0),
        figure(t('board.postsThisWeek'), x.posts_this_week),
        figure(t('board.firstRead'), duration(x.first_read_median_seconds))));
  }

  function classTable(classes) {
    const head = ['board.class', 'board.families', 'board.neverSignedIn', 'board.notNotifiable', 'board.inactive', 'board.seen', 'board.postsThisWeek', 'board.firstRead'];
    return h('div', { class: 'card board-table-wrap' },
      h('table', { class: 'board-table' },
        h('caption', { class: 'sr-only' }, t('board.perClass')),
        h('thead', {}, h('tr', {}, head.map((k) => h('th', { scope: 'col' }, t(k))))),
        h('tbody', {}, classes.map((c) => h('tr', { 'data-class': c.class },
          h('th', { scope: 'row', 'data-label': t('board.class') }, c.name),
          cell('board.families', c.families),
          cell('board.neverSignedIn', c.families_never_signed_in, c.families_never_signed_in > 0),
          cell('board.notNotifiable', c.families_not_notifiable, c.families_not_notifiable > 0),
          cell('board.inactive', c.families_inactive, c.families_inactive > 0),
          cell('board.seen', c.last_posts?.length ? t('board.seenValue', { median: percent(c.seen_median), lowest: percent(c.seen_lowest) }) : '—'),
          cell('board.postsThisWeek', c.posts_this_week),
          cell('board.firstRead', duration(c.first_read_median_seconds)))))));
  }

  function cell(labelKey, value, warn = false) {
    return h('td', { 'data-label': t(labelKey), class: warn ? 'warn' : null }, String(value));
  }

  function lastPosts(c) {
    if (!c.last_posts?.length) return null;
    return h('details', { class: 'card board-posts' },
      h('summary', {}, t('board.lastPosts', { count: c.last_posts.length })),
      h('ul', { class: 'plain' }, [...c.last_posts].reverse().map((p) => h('li', {},
        h('strong', {}, p.title || '—'), ' ', h('span', { class: 'muted' }, formatTs(p.ts)), ' — ',
        t('board.seenBy', { count: p.families_read, total: c.families })))));
  }

  function announcements(items) {
    return h('section', { class: 'card board-announcements', 'aria-labelledby': 'board-ann' },
      h('h2', { id: 'board-ann' }, t('board.unreadAnnouncements')),
      items.length
        ? h('ul', { class: 'plain' }, items.map((a) => h('li', { class: 'board-ann', 'data-seq': a.seq },
          h('p', {}, a.urgent ? h('span', { class: 'badge badge-urgent' }, t('board.urgent')) : null, ' ', h('strong', {}, a.title || '—'),
            ' ', h('span', { class: 'muted' }, formatTs(a.ts))),
          h('p', {}, t('board.seenBy', { count: a.families_read, total: a.families_total })),
          h('p', { class: 'actions' }, h('button', { type: 'button', class: 'btn remind', onclick: (ev) => remind(a, ev.currentTarget) },
            icon('✉'), ' ', t('board.remind'))))))
        : h('p', { class: 'muted' }, t('board.allRead')));
  }

  async function remind(a, button) {
    button.disabled = true;
    try {
      const r = await request(ctx, '/board/reminders', { method: 'POST', body: { channel: a.channel, seq: a.seq } });
      say(t('board.reminded', { count: r.sent }));
      setChildren(button, icon('✓'), ' ', t('board.remindedToday')); // once a day: it stays disabled
    } catch (err) {
      button.disabled = false;
      if (err.reason === 'quiet_hours') say(t('board.quietHours', { when: formatFull(err.retryAt * 1000) }), true);
      else say(err.status === 409 ? t('board.alreadyReminded') : t('board.remindFailed'), true);
    }
  }

  function lists(families, csvPath) {
    return h('section', { class: 'board-lists', 'aria-label': t('board.lists') },
      LISTS.map((name) => {
        const members = families.filter((f) => (name === 'not_notifiable' ? f.some_not_notifiable : f[name]));
        return h('details', { class: `card board-list list-${name}`, open: members.length > 0 && members.length <= 8 },
          h('summary', {}, t(`board.list.${name}`), ' ', h('span', { class: 'badge badge-count' }, String(members.length))),
          h('p', { class: 'muted' }, t(`board.listHint.${name}`)),
          h('p', { class: 'actions' }, h('button', { type: 'button', class: 'btn export-csv', 'data-list': name, onclick: (ev) => exportCsv(`${csvPath}?list=${name}`, ev.currentTarget) },
            icon('⬇'), ' ', t('board.export'))),
          members.length
            ? h('ul', { class: 'plain families' }, members.map((f) => familyItem(f)))
            : h('p', { class: 'muted' }, t('board.none')));
      }));
  }

  function familyItem(f) {
    return h('li', { class: 'family', 'data-student': f.student },
      h('div', { class: 'family-text' },
        h('p', {}, h('strong', {}, f.student_name), ' ', h('span', { class: 'muted' }, f.class_name)),
        h('ul', { class: 'plain guardians' }, f.guardians.map((g) => h('li', {},
          g.name, ' ',
          g.phone ? h('a', { href: `tel:${g.phone}` }, g.phone) : null, ' ',
          g.email ? h('a', { href: `mailto:${g.email}` }, g.email) : h('span', { class: 'muted' }, t('board.noEmail')),
          g.notifiable ? null : h('span', { class: 'badge badge-urgent' }, t('board.unreachable')))))),
      h('button', { type: 'button', class: 'btn open-chat', onclick: () => ctx.openChat(f.student) }, icon('💬'), ' ', t('board.openChat')));
  }

  // "Exporter (CSV)": fetched with the token, saved under the server's file name.
  async function exportCsv(path, button) {
    button.disabled = true;
    try {
      const res = await request(ctx, path, { raw: true });
      const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') || '')?.[1] || 'familles.csv';
      const url = URL.createObjectURL(await res.blob());
      const a = h('a', { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      say(t('board.exported', { name }));
    } catch {
      say(t('board.exportFailed'), true);
    } finally {
      button.disabled = false;
    }
  }

  load();
  return { el, update() {}, destroy() { destroyed = true; } };
}
