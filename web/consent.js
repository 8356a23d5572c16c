// "Droit à l'image" (#/consents, guardians): for each of their children, whether photos
// where the child appears may be shown to the class (GET /api/v1/me/consents, PUT
// /api/v1/me/consents/{student}). Withdrawing hides at once every published photo of the
// child from the other families; granting again shows them again once every guardian agrees.

import { h, setChildren, newId, icon } from './dom.js';
import { t } from './i18n.js';
import { authHeader } from './viewer.js';

const STATES = ['granted', 'refused', 'not_asked'];

async function call(path, { method = 'GET', body } = {}) {
  const res = await fetch(`/api/v1${path}`, {
    method, cache: 'no-store',
    headers: { accept: 'application/json', ...authHeader(), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw Object.assign(new Error(String(res.status)), { status: res.status });
  return res.json();
}

export function consentView() {
  const body = h('div', { class: 'consent-body' }, h('p', { class: 'muted' }, t('app.loading')));
  const status = h('p', { class: 'form-status', role: 'status' });
  const el = h('div', { class: 'view view-consents' },
    h('h1', { class: 'view-title', tabindex: '-1' }, t('consent.title')),
    h('p', { class: 'muted' }, t('consent.intro')),
    body, status);

  function render(children) {
    if (!children.length) {
      setChildren(body, h('p', { class: 'empty card' }, t('consent.none')));
      return;
    }
    setChildren(body, children.map((c) => {
      const name = `consent-${c.student}`;
      return h('fieldset', { class: 'card consent-child' },
        h('legend', {}, icon('📷'), ' ', c.name),
        STATES.filter((s) => s !== 'not_asked' || c.state === 'not_asked').map((state) => {
          const id = newId('consent');
          return h('span', { class: 'consent-choice' },
            h('input', {
              type: 'radio', id, name, value: state, checked: c.state === state, disabled: state === 'not_asked',
              onchange: () => save(c, state),
            }),
            h('label', { for: id }, t(`consent.${state}`)));
        }));
    }));
  }

  async function save(child, state) {
    status.className = 'form-status';
    status.textContent = t('consent.saving');
    try {
      const answer = await call(`/me/consents/${encodeURIComponent(child.student)}`, { method: 'PUT', body: { state } });
      render(answer.children);
      status.textContent = t(state === 'granted' ? 'consent.savedGranted' : 'consent.savedRefused', { name: child.name });
    } catch {
      status.className = 'form-status error';
      status.textContent = t('error.generic');
    }
  }

  call('/me/consents').then((answer) => render(answer.children), () => {
    setChildren(body, h('p', { class: 'form-status error' }, t('error.generic')));
  });
  return { el, update: () => {} };
}
