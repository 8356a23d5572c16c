// Chats between staff and a family: the list of conversations and one conversation
// (oldest first, older ones load when scrolling up, typing indicator, edit/delete own).

import { h, add, reconcile, icon, firstName, linkify } from './dom.js';
import { newKey } from './protocol.js';
import { t, formatTs, formatFull, list } from './i18n.js';
import { editForm, errorText } from './compose.js';
import { actions, attachmentList } from './feed.js';
import { scheduleActions } from './schedule.js';

const TYPING_EVERY_MS = 3000;

export function chatsView(ctx, channel) {
  const { dir, store } = ctx;
  const open = channel && (dir.chats.has(channel) || store.channels.has(channel)) ? channel : null;
  const items = h('ul', { class: 'plain chat-items' });
  const none = h('p', { class: 'muted' }, dir.me.role === 'guardian' ? t('chat.noneParent') : t('chat.noneStaff'));
  const starters = dir.me.role === 'guardian' && dir.guardiansMayStartChats()
    ? h('div', { class: 'starters' }, dir.myChildren().filter((s) => !dir.chatAbout(s.id)).map((s) =>
      h('button', { type: 'button', class: 'btn', onclick: () => ctx.openChat(s.id) }, icon('✉'), ' ', t('chat.startAbout', { student: firstName(s.name) }))))
    : null;
  const listNav = h('nav', { class: 'card chat-list', 'aria-labelledby': 'chats-h' },
    h(open ? 'h2' : 'h1', { id: 'chats-h', class: 'view-title', tabindex: '-1' }, t('chat.list')), items, none, starters);
  const convo = open ? conversation(ctx, open) : null;
  const el = h('div', { class: open ? 'view view-chats has-open' : 'view view-chats' }, listNav,
    convo ? convo.el : h('p', { class: 'card muted pick' }, t('chat.pick')));

  function update() {
    const dir = ctx.dir; // the profile may have been reloaded (a chat was opened)
    const chats = [...new Set([...dir.chats.keys(), ...[...store.channels.keys()].filter((c) => c.startsWith('chat:'))])]
      .map((c) => ({ channel: c, last: store.last(c) }))
      .sort((a, b) => (b.last?.ts ?? 0) - (a.last?.ts ?? 0));
    none.hidden = chats.length > 0;
    reconcile(items, chats.map(({ channel: c, last }) => {
      const unread = store.unreadCount([c]);
      return {
        key: c,
        version: [last?.seq, last?.edited, last?.deleted, unread, c === open, ctx.ui.clock, dir.chatTitle(c), store.isClosed(c)].join('|'),
        render: () => chatItem(ctx, c, last, unread, c === open),
      };
    }));
    convo?.update();
  }
  update();
  return { el, update, destroy: () => convo?.destroy(), afterMount: () => convo?.afterMount() };
}

function chatItem(ctx, c, last, unread, current) {
  const { dir } = ctx;
  const preview = !last ? '' : last.deleted ? t(last.from && !last.from.id ? 'msg.erased' : 'msg.deleted')
    : last.from?.id === dir.me.id ? t('chat.lastYou', { text: last.data?.text ?? '' }) : last.data?.text ?? '';
  return h('li', {},
    h('a', { href: `#/chat/${encodeURIComponent(c)}`, class: unread ? 'chat-item unread' : 'chat-item', 'aria-current': current ? 'page' : null },
      h('span', { class: 'chat-item-title' }, dir.chatTitle(c)),
      unread ? h('span', { class: 'badge badge-count' }, String(unread), h('span', { class: 'sr-only' }, ' ', t('nav.unread', { count: unread }))) : null,
      h('span', { class: 'chat-item-preview' },
        ctx.store.isClosed(c) ? h('span', { class: 'tag-closed' }, icon('🔒'), ' ', t('chat.closed'), ' · ') : null, preview),
      last ? h('time', { datetime: new Date(last.ts).toISOString() }, formatTs(last.ts)) : null));
}

function conversation(ctx, channel) {
  const { store, conn } = ctx;
  const title = h('h1', { id: 'convo-h', tabindex: '-1' });
  const membersLine = h('p', { class: 'muted' });
  const log = h('div', { class: 'chat-log' });
  const more = h('button', { type: 'button', class: 'btn sentinel', onclick: () => loadOlder() }, t('feed.loadOlder'));
  const typing = h('p', { class: 'typing' });
  const empty = h('p', { class: 'muted empty' }, t('chat.empty'));
  const input = h('textarea', { id: 'chat-input', rows: 2, placeholder: t('chat.placeholder'), required: true, 'aria-describedby': 'chat-closed-note' });
  const status = h('p', { class: 'form-status error', role: 'status' });
  const send = h('button', { type: 'submit', class: 'btn btn-primary' }, icon('➤'), ' ', t('chat.send'));
  const closedNote = h('p', { class: 'closed-note', id: 'chat-closed-note', role: 'status' });
  // staff may send later (issue 12): "Envoyer à 07:30" during the school's quiet hours
  let scheduleAt = null;
  const later = ctx.dir.me.role !== 'guardian'
    ? scheduleActions(ctx, (at) => { if (input.value.trim()) { scheduleAt = at; form.requestSubmit(); } }) : null;
  const form = h('form', { class: 'chat-form' },
    closedNote,
    h('label', { for: 'chat-input', class: 'sr-only' }, t('chat.label')), input, send, status, later?.el);
  // closing (staff of the chat, directors): an inline confirmation, then the composer locks
  const closeBox = h('div', { class: 'convo-tools' });
  let confirmingClose = false;
  function renderTools() {
    const closed = store.isClosed(channel);
    if (!ctx.dir.mayCloseChat(channel)) return closeBox.replaceChildren();
    if (closed) {
      closeBox.replaceChildren(h('button', { type: 'button', class: 'btn btn-small', 'data-fk': 'reopen', onclick: () => ctx.setChatClosed(channel, false) },
        icon('🔓'), ' ', t('chat.reopen')));
    } else if (confirmingClose) {
      const yes = h('button', { type: 'button', class: 'btn btn-small btn-danger', 'data-fk': 'close-yes', onclick: async () => { confirmingClose = false; await ctx.setChatClosed(channel, true); renderTools(); } }, t('chat.closeYes'));
      closeBox.replaceChildren(h('div', { class: 'msg-actions confirm', role: 'group', 'aria-label': t('chat.close') },
        h('span', {}, t('chat.closeConfirm')), yes,
        h('button', { type: 'button', class: 'btn btn-small', onclick: () => { confirmingClose = false; renderTools(); closeBox.querySelector('button')?.focus(); } }, t('msg.cancel'))));
      yes.focus();
    } else {
      closeBox.replaceChildren(h('button', { type: 'button', class: 'btn btn-small btn-quiet', 'data-fk': 'close', onclick: () => { confirmingClose = true; renderTools(); } },
        icon('🔒'), ' ', t('chat.close')));
    }
  }
  const el = h('section', { class: 'card conversation', 'aria-labelledby': 'convo-h' },
    h('header', { class: 'convo-head' },
      h('a', { href: '#/chats', class: 'back' }, icon('←'), ' ', t('chat.back')),
      title, membersLine, closeBox),
    more, log, empty, typing, form);

  let pending = null; // {key, text}
  let lastTyping = 0;
  input.addEventListener('input', () => {
    if (Date.now() - lastTyping < TYPING_EVERY_MS || !input.value.trim()) return;
    lastTyping = Date.now();
    conn.request('typing', { channel }).catch(() => {});
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    const at = scheduleAt;
    scheduleAt = null;
    if (!text) return;
    if (!pending || pending.text !== text || pending.at !== at) pending = { key: newKey(), text, at };
    status.textContent = '';
    input.value = '';
    try {
      const reply = await conn.request('publish', { channel, kind: 'chat', data: { text }, key: pending.key, ...(at ? { at } : {}) });
      if (reply?.scheduled) status.textContent = t('schedule.done', { when: formatFull(reply.at) });
      pending = null;
      lastTyping = 0;
    } catch (err) {
      if (!input.value) input.value = text; // give the text back to retry
      if (err.code === 'closed') store.setClosed(channel, true);
      else status.textContent = errorText(err);
    }
  });

  // History on scroll: older messages load when the top of the conversation comes near.
  let busy = false;
  async function loadOlder() {
    if (busy || !store.hasMore(channel)) return;
    busy = true;
    try { await ctx.loadOlder(channel); } finally {
      busy = false;
      update();
      requestAnimationFrame(nearTop);
    }
  }
  function nearTop() {
    update();
    if (!more.hidden && more.isConnected && more.getBoundingClientRect().bottom > -300) loadOlder();
  }
  const io = new IntersectionObserver((es) => { if (es.some((e) => e.isIntersecting)) nearTop(); }, { rootMargin: '300px' });

  let lastSeen = null;
  let wasClosed = null;
  function update() {
    const dir = ctx.dir;
    const closed = store.isClosed(channel);
    if (closed !== wasClosed) {
      wasClosed = closed;
      el.classList.toggle('closed', closed);
      input.disabled = send.disabled = closed;
      closedNote.hidden = !closed;
      closedNote.replaceChildren(...(closed ? [icon('🔒'), ' ', h('strong', {}, t('chat.closed')), ' — ',
        dir.mayCloseChat(channel) ? t('chat.closedStaff') : t('chat.closedParent')] : []));
      if (closed) status.textContent = '';
      confirmingClose = false;
      renderTools();
    }
    const members = dir.chatMembers(channel).map((id) => dir.name(id));
    title.textContent = dir.chatTitle(channel);
    log.setAttribute('aria-label', dir.chatTitle(channel));
    membersLine.textContent = members.length ? t('chat.members', { names: list(members) }) : '';
    const msgs = store.list(channel);
    const nearBottom = innerHeight + scrollY >= document.documentElement.scrollHeight - 160;
    reconcile(log, msgs.map((m) => {
      const key = `${m.channel}#${m.seq}`;
      return {
        key,
        version: ctx.ui.editing === key ? `editing|${m.deleted}` // keep the edit form as typed
          : [m.edited, m.deleted, store.isUnread(m), ctx.ui.confirming === key, ctx.ui.clock, store.readByOthers(m), closed].join('|'),
        render: () => bubble(ctx, m, key),
      };
    }));
    empty.hidden = msgs.length > 0 || store.hasMore(channel);
    more.hidden = !store.hasMore(channel);
    const who = store.typers(channel).map((u) => dir.name(u));
    typing.textContent = who.length ? t('chat.typing', { name: list(who) }) : '';
    const newest = msgs[msgs.length - 1];
    if (newest && newest.seq !== lastSeen) {
      const mine = newest.from?.id === dir.me.id;
      if (lastSeen === null || nearBottom || mine) requestAnimationFrame(() => scrollTo(0, document.documentElement.scrollHeight));
      lastSeen = newest.seq;
    }
  }
  return {
    el, update,
    afterMount() {
      io.observe(more);
      scrollTo(0, document.documentElement.scrollHeight);
    },
    destroy: () => io.disconnect(),
  };
}

function bubble(ctx, m, key) {
  const { dir, store, ui } = ctx;
  const mine = m.from?.id === dir.me.id;
  const seenByOthers = mine && !m.deleted && store.readByOthers(m);
  const unread = store.isUnread(m);
  const el = h('article', { class: `bubble${mine ? ' mine' : ''}${unread ? ' unread' : ''}${m.deleted ? ' deleted' : ''}` });
  add(el, h('p', { class: 'meta' },
    h('span', { class: 'author' }, mine ? t('msg.you') : m.from?.name ?? ''), ' · ',
    h('time', { datetime: new Date(m.ts).toISOString(), title: formatFull(m.ts) }, formatTs(m.ts)),
    m.edited && !m.deleted ? h('span', { class: 'edited' }, ' · ', t('msg.edited')) : null,
    unread ? h('span', { class: 'badge badge-new' }, t('msg.new')) : null,
    seenByOthers ? h('span', { class: 'read-mark', title: t(dir.me.role === 'guardian' ? 'msg.readByStaffLong' : 'msg.readByFamily') }, icon('✔'), ' ', t('msg.readByStaff')) : null));
  if (m.deleted) {
    add(el, h('p', { class: 'text deleted' }, icon('🗑'), ' ', t(m.from && !m.from.id ? 'msg.erased' : 'msg.deleted')));
    return el;
  }
  if (ui.editing === key) {
    add(el, editForm(ctx, m, () => { ui.editing = null; ctx.refresh(); ctx.focusKey(key, 'edit'); }));
    requestAnimationFrame(() => el.querySelector('textarea')?.focus());
    return el;
  }
  add(el, h('p', { class: 'text' }, linkify(m.data?.text ?? '')), attachmentList(m.data?.attachments));
  const closed = store.isClosed(m.channel);
  if (mine && !closed) add(el, actions(ctx, m, key));
  // the chat's staff member may remove what a parent wrote (not change it)
  else if (!mine && dir.chats.get(m.channel)?.staff?.id === dir.me.id) add(el, actions(ctx, m, key, { edit: false }));
  if (unread) ctx.reads.watch(el, m);
  return el;
}
