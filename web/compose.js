// Composing and editing: the fields of each kind (post, event, homework,
// announcement), the composer of a feed, and the inline edit form of a message.

import { h, setChildren, newId, icon, toLocalInput, fromLocalInput, todayPlus } from './dom.js';
import { newKey } from './protocol.js';
import { t, formatFull } from './i18n.js';
import { scheduleActions, scheduledList } from './schedule.js';
import { attachPicker } from './uploads.js';

// Labelled controls for one kind, filled from `data` (editing) or empty.
export function kindFields(kind, data = {}) {
  const f = (name, label, input) => {
    const id = newId(name);
    input.id = id;
    input.name = name;
    return h('div', { class: 'field' }, h('label', { for: id }, label), input);
  };
  const text = (required, label = t('compose.text')) =>
    f('text', label, h('textarea', { rows: 3, required, value: data.text ?? '' }));
  switch (kind) {
    case 'event':
      return [
        f('title', t('compose.title'), h('input', { type: 'text', required: true, value: data.title ?? '', autocomplete: 'off' })),
        h('div', { class: 'field-row' },
          f('starts_at', t('compose.startsAt'), h('input', { type: 'datetime-local', required: true, value: data.starts_at ? toLocalInput(data.starts_at) : '' })),
          f('ends_at', t('compose.endsAt'), h('input', { type: 'datetime-local', value: data.ends_at ? toLocalInput(data.ends_at) : '' }))),
        f('place', t('compose.place'), h('input', { type: 'text', value: data.place ?? '', autocomplete: 'off' })),
        text(false, t('compose.textOptional')),
      ];
    case 'homework':
      return [
        text(true),
        f('due', t('compose.due'), h('input', { type: 'date', required: true, value: data.due ?? todayPlus(1) })),
      ];
    case 'announcement':
      return [
        f('title', t('compose.titleOptional'), h('input', { type: 'text', value: data.title ?? '', autocomplete: 'off' })),
        text(true),
      ];
    case 'chat':
      return [text(true, t('chat.editLabel'))];
    default: // post
      return [
        f('title', t('compose.titleOptional'), h('input', { type: 'text', value: data.title ?? '', autocomplete: 'off' })),
        text(true),
      ];
  }
}

// The message data from a form's fields (empty optional fields are left out).
export function readData(form, kind, base = {}) {
  const v = (name) => (form.elements.namedItem(name)?.value ?? '').trim();
  const data = { ...base };
  const put = (k, val) => { if (val) data[k] = val; else delete data[k]; };
  if (kind === 'event') {
    put('title', v('title'));
    put('starts_at', fromLocalInput(v('starts_at')));
    put('ends_at', fromLocalInput(v('ends_at')));
    put('place', v('place'));
    put('text', v('text'));
  } else if (kind === 'homework') {
    put('text', v('text'));
    put('due', v('due'));
  } else {
    if (kind !== 'chat') put('title', v('title'));
    put('text', v('text'));
    const urgent = form.elements.namedItem('urgent');
    if (urgent) data.urgent = urgent.checked;
  }
  return data;
}

export function errorText(err) {
  const key = `error.${err?.code}`;
  return ['forbidden', 'too_large', 'bad_request', 'rate_limited', 'not_found', 'timeout', 'closed'].includes(err?.code)
    ? t(key) : t('error.generic');
}

// The composer of a feed: {channel, kinds: ['post','event','homework'] | ['announcement'], name,
// urgentAs}: with `urgentAs` (the staff room, for directors) a post may be marked urgent,
// and is then sent as that kind (an announcement) with `urgent: true`.
export function composer(ctx, { channel, kinds, name, urgentAs = null }) {
  const isAnn = kinds[0] === 'announcement';
  let kind = kinds[0];
  let pending = null; // {key, json}: an idempotency key kept while the same content is retried
  const fields = h('div', { class: 'fields' });
  const status = h('p', { class: 'form-status', role: 'status' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, isAnn ? t('compose.submitAnn') : t('compose.submit'));
  const urgentId = newId('urgent');
  const urgentHint = newId('urgent-hint');
  const urgent = isAnn || urgentAs
    ? h('div', { class: 'field check urgent-check' },
      h('input', { type: 'checkbox', id: urgentId, name: 'urgent', 'aria-describedby': urgentHint }),
      h('label', { for: urgentId }, icon('⚠'), ' ', t('compose.urgent')),
      h('p', { id: urgentHint, class: 'hint' }, t('compose.urgentHint')))
    : null;
  const kindPicker = kinds.length > 1
    ? h('fieldset', { class: 'segmented' },
      h('legend', {}, t('compose.kind')),
      kinds.map((k, i) => {
        const id = newId('kind');
        return h('span', { class: 'seg' },
          h('input', { type: 'radio', name: 'kind', id, value: k, checked: i === 0, onchange: () => { kind = k; fill(); } }),
          h('label', { for: id }, t(`compose.kind.${k}`)));
      }))
    : null;
  const fill = () => setChildren(fields, ...kindFields(kind));
  fill();
  const picker = attachPicker(ctx, channel); // photos and documents (issue 13)

  // staff may publish later (issue 12): "Envoyer à 07:30" in the quiet hours, or a chosen time
  let scheduleAt = null;
  const staff = Boolean(ctx.dir?.me?.role) && ctx.dir.me.role !== 'guardian';
  const later = staff ? scheduleActions(ctx, (at) => {
    if (!form.reportValidity()) return;
    scheduleAt = at;
    form.requestSubmit();
  }) : null;
  const scheduled = staff ? scheduledList(ctx) : null;
  const form = h('form', { class: 'compose-form', novalidate: false },
    kindPicker, fields, picker.el, urgent, h('div', { class: 'form-actions' }, submit, status), later?.el);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const at = scheduleAt;
    scheduleAt = null;
    const data = readData(form, kind);
    const files = picker.collect();
    if (files.error) {
      status.className = 'form-status error';
      status.textContent = files.error;
      return;
    }
    if (files.attachments.length) data.attachments = files.attachments;
    let sendKind = kind;
    if (urgentAs) {
      const flagged = data.urgent;
      delete data.urgent;
      if (flagged) {
        sendKind = urgentAs;
        data.urgent = true;
      }
    }
    const json = JSON.stringify([sendKind, data, at]);
    if (!pending || pending.json !== json) pending = { key: newKey(), json };
    submit.disabled = true;
    status.className = 'form-status';
    status.textContent = ctx.conn.state === 'online' ? t('compose.sending') : t('compose.waiting');
    try {
      const reply = await ctx.conn.request('publish', { channel, kind: sendKind, data, key: pending.key, ...(at ? { at } : {}) });
      pending = null;
      form.reset();
      picker.reset();
      fill();
      const radio = [...form.querySelectorAll('input[name=kind]')].find((r) => r.value === kind);
      if (radio) radio.checked = true;
      const said = reply?.scheduled ? t('schedule.done', { when: formatFull(reply.at) }) : t('compose.sent');
      status.textContent = said;
      setTimeout(() => { if (status.textContent === said) status.textContent = ''; }, reply?.scheduled ? 8000 : 4000);
      if (reply?.scheduled) scheduled?.load();
      form.querySelector('input:not([type=radio]), textarea')?.focus();
    } catch (err) {
      if (!['timeout', 'disconnected', 'unavailable', 'internal'].includes(err.code)) pending = null;
      status.className = 'form-status error';
      status.textContent = err.code === 'consent_missing' ? picker.missingText(files.missing) : errorText(err);
    } finally {
      submit.disabled = false;
    }
  });

  const wide = matchMedia('(min-width: 50em)').matches;
  return h('details', { class: 'card composer', open: wide },
    h('summary', {}, icon('✎'), ' ', isAnn ? t('compose.openAnn') : t('compose.open'),
      h('span', { class: 'muted' }, ' — ', t('compose.in', { name }))),
    form, scheduled?.el);
}

// Inline edit form of message `m` (kind-aware); calls done() when finished or cancelled.
export function editForm(ctx, m, done) {
  const status = h('p', { class: 'form-status error', role: 'status' });
  const form = h('form', { class: 'edit-form', 'aria-label': t('msg.editTitle') },
    kindFields(m.kind, m.data),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'btn btn-primary', 'data-fk': 'save' }, t('msg.save')),
      h('button', { type: 'button', class: 'btn', onclick: () => done() }, t('msg.cancel')),
      status));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const data = readData(form, m.kind, m.data);
    try {
      await ctx.conn.request('edit', { channel: m.channel, seq: m.seq, data });
      done(true);
    } catch (err) {
      status.textContent = errorText(err);
    }
  });
  form.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') done(); });
  return form;
}
