// Feeds (class posts, events, homework, school announcements; newest first) and the
// message card shared with nothing else: kind, author, time, unread and urgent markers,
// receipts for staff, edit and delete for the author.

import { h, setChildren, add, reconcile, icon, newId, linkify, safeHref, externalLink } from './dom.js';
import { t, formatTs, formatFull, formatEvent, formatDay } from './i18n.js';
import { composer, editForm, errorText } from './compose.js';
import { receiptsBlock } from './people.js';
import { uploadedAttachment } from './viewer.js';

// {title, subtitle, channels, compose: {channel, kinds, name} | null,
//  actions: Node under the title | null, aside: side panel on wide screens | null}
export function feedView(ctx, { title, subtitle, channels, compose, actions: top, aside }) {
  const list = h('div', { class: 'feed-list' });
  const empty = h('p', { class: 'empty card', hidden: true }, t('feed.empty'));
  const more = h('button', { type: 'button', class: 'btn sentinel', onclick: () => loadOlder() }, t('feed.loadOlder'));
  const end = h('p', { class: 'muted feed-end', hidden: true }, t('feed.start'));
  const headId = newId('feed');
  const main = h('section', { class: 'col-main', 'aria-labelledby': headId },
    h('h1', { class: 'view-title', id: headId, tabindex: '-1' }, title),
    subtitle ? h('p', { class: 'muted subtitle' }, subtitle) : null,
    top,
    compose ? composer(ctx, compose) : null,
    list, empty, more, end);
  const side = aside?.el ?? aside; // a Node, or {el, update} to follow the store
  const el = h('div', { class: side ? 'view view-feed with-aside' : 'view view-feed' }, main, side);

  // History on scroll: when the end of the list comes near the screen, load older pages.
  let busy = false;
  async function loadOlder() {
    if (busy) return;
    busy = true;
    more.textContent = t('feed.loadingOlder');
    try {
      await Promise.all(channels.filter((c) => ctx.store.hasMore(c)).map((c) => ctx.loadOlder(c)));
    } finally {
      busy = false;
      more.textContent = t('feed.loadOlder');
      update();
      requestAnimationFrame(nearEnd);
    }
  }
  function nearEnd() {
    update(); // the observer's measure may predate the last render
    if (!more.hidden && more.isConnected && more.getBoundingClientRect().top < innerHeight + 300) loadOlder();
  }
  const io = new IntersectionObserver((es) => { if (es.some((e) => e.isIntersecting)) nearEnd(); }, { rootMargin: '300px' });
  io.observe(more);

  function update() {
    const msgs = ctx.store.feed(channels);
    reconcile(list, msgs.map((m) => {
      const key = `${m.channel}#${m.seq}`;
      return { key, version: cardVersion(ctx, m, key), render: () => messageCard(ctx, m, key) };
    }));
    const hasMore = channels.some((c) => ctx.store.hasMore(c));
    empty.hidden = msgs.length > 0 || hasMore;
    more.hidden = !hasMore;
    end.hidden = hasMore || msgs.length < 5;
    aside?.update?.();
  }
  update();
  return { el, update, destroy: () => io.disconnect() };
}

function showReceipts(ctx, m) {
  if (m.deleted || ctx.dir.me.role === 'guardian') return false;
  if (!m.channel.startsWith('class:') && !m.channel.startsWith('school:')) return false; // families read those only
  return m.from?.id === ctx.dir.me.id || ctx.dir.me.role === 'director';
}

function cardVersion(ctx, m, key) {
  // while its edit form is open, a card is not re-rendered (that would lose the typing)
  if (ctx.ui.editing === key) return `editing|${m.deleted}`;
  const r = showReceipts(ctx, m) ? ctx.store.receipt(m.channel, m.seq) : null;
  const rv = r ? (r.read ? `${r.read.size}/${r.unread.size}/${[...r.unread].join()}/${r.familiesRead}` : JSON.stringify(r)) : '-';
  return [m.edited, m.deleted, ctx.store.isUnread(m), rv, ctx.ui.editing === key, ctx.ui.confirming === key,
    ctx.ui.expanded.has(key), ctx.ui.clock].join('|');
}

const KIND_ICON = { announcement: '📣', post: '📝', event: '📅', homework: '📚', chat: '💬' };

export function messageCard(ctx, m, key) {
  const { store, dir, ui } = ctx;
  const mine = m.from?.id === dir.me.id;
  const unread = store.isUnread(m);
  const urgent = !!m.data?.urgent && !m.deleted;
  const cls = ['card', 'msg', `kind-${m.kind}`];
  if (unread) cls.push('unread');
  if (urgent) cls.push(unread ? 'urgent urgent-unread' : 'urgent');
  const headId = `h-${key.replace(/[^a-z0-9]/gi, '-')}`;
  const el = h('article', { class: cls.join(' '), 'aria-labelledby': headId });

  const badges = h('p', { class: 'badges' },
    h('span', { class: 'kind' }, icon(KIND_ICON[m.kind] || '•'), ' ', t(m.channel.startsWith('staff:') ? `kind.staff.${m.kind}` : `kind.${m.kind}`)),
    urgent ? h('span', { class: 'badge badge-urgent' }, icon('⚠'), ' ', t('urgent.label')) : null,
    unread ? h('span', { class: 'badge badge-new' }, t('msg.new')) : null);
  const meta = h('p', { class: 'meta' },
    h('span', { class: 'author' }, mine ? t('msg.you') : m.from?.name ?? ''), ' · ',
    h('time', { datetime: new Date(m.ts).toISOString(), title: formatFull(m.ts) }, formatTs(m.ts)),
    m.edited && !m.deleted ? h('span', { class: 'edited' }, ' · ', t('msg.edited')) : null);

  if (m.deleted) {
    // an erased author (issue 15) has no id: the message was removed at their request
    const label = m.from && !m.from.id ? 'msg.erased' : 'msg.deleted';
    add(el, badges, h('p', { class: 'deleted', id: headId }, icon('🗑'), ' ', t(label)), meta);
    return el;
  }
  const heading = m.kind === 'homework' && m.data?.due
    ? t('msg.homework.due', { date: formatDay(m.data.due) })
    : m.data?.title || null;
  add(el, badges, heading ? h('h2', { class: 'msg-title', id: headId }, heading) : null, meta);
  if (!heading) el.setAttribute('aria-labelledby', `${headId}-b`);

  if (ui.editing === key) {
    add(el, editForm(ctx, m, () => { ui.editing = null; ctx.refresh(); el.isConnected && ctx.focusKey(key, 'edit'); }));
    requestAnimationFrame(() => el.querySelector('input, textarea')?.focus());
    return el;
  }
  add(el, body(m, `${headId}-b`));
  if (showReceipts(ctx, m)) add(el, receiptsBlock(ctx, m, key));
  if (mine || (dir.me.role === 'director' && (m.channel.startsWith('class:') || m.channel.startsWith('school:') || m.channel.startsWith('staff:')))) add(el, actions(ctx, m, key));
  if (unread) ctx.reads.watch(el, m);
  return el;
}

export function body(m, id) {
  const d = m.data || {};
  const parts = [];
  if (m.kind === 'event') {
    parts.push(h('dl', { class: 'event' },
      h('dt', {}, icon('🕑'), ' ', t('msg.event.when')), h('dd', {}, formatEvent(d.starts_at, d.ends_at)),
      d.place ? [h('dt', {}, icon('📍'), ' ', t('msg.event.where')), h('dd', {}, d.place)] : null));
  }
  if (d.text) parts.push(h('p', { class: 'text' }, linkify(d.text)));
  parts.push(attachmentList(d.attachments));
  return h('div', { class: 'msg-body', id }, parts);
}

// The files of a message (post, event, homework, announcement, chat): http(s) links only.
export function attachmentList(attachments) {
  if (!Array.isArray(attachments) || !attachments.length) return null;
  return h('ul', { class: 'attachments', 'aria-label': t('msg.attachments') },
    attachments.map((a) => {
      if (a?.upload) return h('li', {}, uploadedAttachment(a)); // a file uploaded here (issue 13)
      const href = safeHref(a?.url);
      const label = [icon('📎'), ' ', String(a?.name || a?.url || '')];
      return h('li', {}, href
        ? externalLink(href, ...label, h('span', { class: 'sr-only' }, ' ', t('msg.opensNew')))
        : h('span', {}, ...label));
    }));
}

export function safeUrl(url) {
  return safeHref(url) ?? '#';
}

// Edit / delete (with an inline confirmation instead of a modal); `edit: false` for a
// message someone else wrote that I may only delete (a teacher in a chat with a family).
export function actions(ctx, m, key, { edit = true } = {}) {
  const { ui } = ctx;
  const status = h('span', { class: 'form-status error', role: 'status' });
  if (ui.confirming === key) {
    return h('div', { class: 'msg-actions confirm', role: 'group', 'aria-label': t('msg.actions') },
      h('span', {}, t('msg.confirmDelete')),
      h('button', {
        type: 'button', class: 'btn btn-danger', 'data-fk': 'confirm',
        onclick: async () => {
          try {
            await ctx.conn.request('delete', { channel: m.channel, seq: m.seq });
            ui.confirming = null;
            ctx.refresh();
          } catch (err) {
            status.textContent = errorText(err);
          }
        },
      }, t('msg.confirmYes')),
      h('button', { type: 'button', class: 'btn', 'data-fk': 'cancel', onclick: () => { ui.confirming = null; ctx.refresh(); ctx.focusKey(key, 'delete'); } }, t('msg.cancel')),
      status);
  }
  return h('div', { class: 'msg-actions', role: 'group', 'aria-label': t('msg.actions') },
    edit ? h('button', { type: 'button', class: 'btn btn-small btn-quiet', 'data-fk': 'edit', onclick: () => { ui.editing = key; ui.confirming = null; ctx.refresh(); } }, icon('✎'), ' ', t('msg.edit')) : null,
    h('button', { type: 'button', class: 'btn btn-small btn-quiet', 'data-fk': 'delete', onclick: () => { ui.confirming = key; ctx.refresh(); ctx.focusKey(key, 'confirm'); } }, icon('🗑'), ' ', t('msg.delete')));
}

// Coming events and homework of a child's feed: a side panel on wide screens and, on
// phones (where there is no side), a foldable card at the top of the feed (`phone`).
export function upcomingAside(ctx, channel) {
  const items = h('ul', { class: 'plain upcoming' });
  const none = h('p', { class: 'muted' }, t('upcoming.none'));
  const el = h('aside', { class: 'card aside wide-only', 'aria-labelledby': 'aside-upcoming' },
    h('h2', { id: 'aside-upcoming' }, t('upcoming.title')), items, none);
  const phoneItems = h('ul', { class: 'plain upcoming' });
  const phoneNone = h('p', { class: 'muted' }, t('upcoming.none'));
  const count = h('span', { class: 'badge badge-count', hidden: true });
  const phone = h('details', { class: 'card upcoming-phone narrow-only' },
    h('summary', {}, icon('📅'), ' ', h('span', { class: 'summary-text' }, t('upcoming.title')), ' ', count),
    phoneItems, phoneNone);
  let last = '';
  function update() {
    const today = new Date();
    today.setHours(0, 0, 0, 0);
    const list = ctx.store.list(channel).filter((m) => !m.deleted && (
      (m.kind === 'event' && new Date(m.data?.ends_at || m.data?.starts_at) >= today) ||
      (m.kind === 'homework' && new Date(`${m.data?.due}T23:59`) >= today)))
      .map((m) => ({ m, at: m.kind === 'event' ? new Date(m.data.starts_at) : new Date(`${m.data.due}T00:00`) }))
      .sort((a, b) => a.at - b.at)
      .slice(0, 6);
    const sig = list.map(({ m }) => `${m.seq}:${m.edited}`).join();
    if (sig === last) return;
    last = sig;
    none.hidden = phoneNone.hidden = list.length > 0;
    count.hidden = !list.length;
    setChildren(count, String(list.length), h('span', { class: 'sr-only' }, ' ', t('upcoming.count', { count: list.length })));
    const entries = () => list.map(({ m }) => h('li', {},
      m.kind === 'event'
        ? [h('strong', {}, icon('📅'), ' ', m.data.title), h('span', { class: 'muted' }, formatEvent(m.data.starts_at, m.data.ends_at))]
        : [h('strong', {}, icon('📚'), ' ', t('msg.homework.due', { date: formatDay(m.data.due) })), h('span', { class: 'muted' }, linkify(m.data.text))],
      attachmentList(m.data.attachments)));
    setChildren(items, entries());
    setChildren(phoneItems, entries());
  }
  return { el, update, phone };
}
