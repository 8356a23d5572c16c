// "Notifications" (#/notifications): the person's notification preferences per kind
// (immédiatement / résumé par e-mail / jamais), the lock screen and the digest e-mails;
// for a director, the school's quiet hours. Server side: GET/PUT
// /api/v1/me/notification-preferences and /api/v1/schools/{id}/quiet-hours (issue 12).

import { t } from './i18n.js';
import { h, setChildren, newId } from './dom.js';
import { userApi } from './schedule.js';

const KINDS = ['announcement', 'post', 'event', 'homework', 'chat'];
const CHOICES = ['immediately', 'digest', 'off'];

function checkbox(name, label, checked, hint = null) {
  const id = newId(name);
  const hintId = hint ? newId(`${name}-hint`) : null;
  return h('div', { class: 'field check' },
    h('input', { type: 'checkbox', id, name, checked, 'aria-describedby': hintId }),
    h('label', { for: id }, label),
    hint ? h('p', { id: hintId, class: 'hint' }, hint) : null);
}

function preferencesForm(ctx, prefs) {
  const status = h('p', { class: 'form-status', role: 'status' });
  const groups = KINDS.map((kind) => h('fieldset', { class: 'segmented pref-kind' },
    h('legend', {}, t(`prefs.kind.${kind}`)),
    CHOICES.map((choice) => {
      const id = newId(`pref-${kind}`);
      return h('span', { class: 'seg' },
        h('input', { type: 'radio', name: `kind-${kind}`, id, value: choice, checked: prefs.kinds[kind] === choice }),
        h('label', { for: id }, t(`prefs.${choice}`)));
    })));
  const form = h('form', { class: 'card prefs-form' }, groups,
    checkbox('show_content', t('prefs.showContent'), prefs.show_content, t('prefs.showContentHint')),
    checkbox('digest_email', t('prefs.digestEmail'), prefs.digest_email),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn btn-primary' }, t('prefs.save')), status));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const kinds = {};
    for (const kind of KINDS) kinds[kind] = form.elements.namedItem(`kind-${kind}`).value || 'immediately';
    const body = { kinds, show_content: form.elements.namedItem('show_content').checked,
      digest_email: form.elements.namedItem('digest_email').checked };
    try {
      await userApi(ctx, '/me/notification-preferences', { method: 'PUT', body });
      status.className = 'form-status';
      status.textContent = t('prefs.saved');
    } catch {
      status.className = 'form-status error';
      status.textContent = t('prefs.saveError');
    }
  });
  return form;
}

function quietHoursForm(ctx, school, quiet) {
  const status = h('p', { class: 'form-status', role: 'status' });
  const field = (name, label, input) => {
    const id = newId(name);
    input.id = id;
    input.name = name;
    return h('div', { class: 'field' }, h('label', { for: id }, label), input);
  };
  const form = h('form', { class: 'card quiet-form', 'aria-labelledby': 'quiet-title' },
    h('h2', { id: 'quiet-title' }, t('quiet.title')),
    h('p', { class: 'muted' }, t('quiet.intro')),
    h('div', { class: 'field-row' },
      field('start', t('quiet.start'), h('input', { type: 'time', required: true, value: quiet.start })),
      field('end', t('quiet.end'), h('input', { type: 'time', required: true, value: quiet.end }))),
    checkbox('weekends', t('quiet.weekends'), quiet.weekends),
    field('holidays', t('quiet.holidays'), h('textarea', { rows: 4, value: (quiet.holidays || []).join('\n') })),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn' }, t('quiet.save')), status));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = (name) => form.elements.namedItem(name);
    const holidays = v('holidays').value.split(/[\s,;]+/).filter(Boolean);
    const body = { start: v('start').value, end: v('end').value, weekends: v('weekends').checked,
      timezone: quiet.timezone, holidays };
    try {
      await userApi(ctx, `/schools/${encodeURIComponent(school)}/quiet-hours`, { method: 'PUT', body });
      status.className = 'form-status';
      status.textContent = t('quiet.saved');
    } catch (err) {
      status.className = 'form-status error';
      status.textContent = err.status === 400 ? t('quiet.invalid') : t('prefs.saveError');
    }
  });
  return form;
}

export function preferencesView(ctx) {
  const body = h('div', { class: 'prefs-body' }, h('p', { class: 'muted' }, t('prefs.loading')));
  const el = h('div', { class: 'view view-prefs' },
    h('h1', { class: 'view-title', tabindex: '-1' }, t('prefs.title')),
    h('p', { class: 'muted' }, t('prefs.intro')),
    body);
  (async () => {
    const school = ctx.dir.school?.id;
    const director = ctx.dir.me.role === 'director' && school;
    try {
      const prefs = await userApi(ctx, '/me/notification-preferences');
      const quiet = director ? await userApi(ctx, `/schools/${encodeURIComponent(school)}/quiet-hours`) : null;
      setChildren(body, preferencesForm(ctx, prefs), quiet ? quietHoursForm(ctx, school, quiet) : null);
    } catch {
      setChildren(body, h('p', { class: 'card notice error' }, t('prefs.error')));
    }
  })();
  return { el, update() {}, destroy() {} };
}
