// Demo sign-in: the demo school's people by role; one tap signs in. Outside demo
// mode (the demo routes answer 404) sign-in belongs to the school's own app or SSO.

import { h, setChildren, icon } from './dom.js';
import { t } from './i18n.js';

const ROLES = ['director', 'teacher', 'guardian'];
const ROLE_ICON = { director: '🏫', teacher: '🍎', guardian: '👪' };

export function signInView(root, { onToken, message = '' }) {
  const status = h('p', { class: 'form-status', role: 'status' }, message);
  const title = h('h1', {}, t('signin.title'));
  const body = h('div', { class: 'signin-body' }, h('p', { class: 'muted' }, t('app.loading')));
  const main = h('main', { id: 'main', class: 'signin', tabindex: '-1' },
    h('div', { class: 'brand-big' }, icon('📒'), ' ', t('app.name')),
    title,
    message ? h('p', { class: 'notice' }, message) : null,
    body, status);
  setChildren(root, main);
  document.title = t('app.title');

  async function load() {
    setChildren(body, h('p', { class: 'muted' }, t('app.loading')));
    let res;
    try {
      res = await fetch('/demo/people', { headers: { accept: 'application/json' } });
    } catch {
      return failed();
    }
    if (res.status === 404) { // not in demo mode
      title.textContent = t('signin.ssoTitle');
      setChildren(body, h('p', { class: 'card notice' }, t('signin.sso')));
      return;
    }
    if (!res.ok) return failed();
    let demo;
    try { demo = await res.json(); } catch { return failed(); }
    setChildren(body,
      h('p', { class: 'lead' }, t('signin.demo', { school: demo.school?.name ?? '' })),
      h('p', { class: 'muted' }, t('signin.intro')),
      ROLES.map((role) => {
        const people = (demo.people || []).filter((p) => p.role === role);
        if (!people.length) return null;
        return h('section', { class: 'card people', 'aria-labelledby': `role-${role}` },
          h('h2', { id: `role-${role}` }, icon(ROLE_ICON[role]), ' ', t(`signin.role.${role}`)),
          h('ul', { class: 'plain people-list' }, people.map((p) => h('li', {},
            h('button', {
              type: 'button', class: 'person', 'data-user': p.id,
              onclick: (ev) => signIn(p, ev.currentTarget),
            }, h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(p.name)), h('span', {}, p.name))))));
      }));
  }

  function failed() {
    setChildren(body,
      h('p', { class: 'card notice error' }, t('signin.error')),
      h('button', { type: 'button', class: 'btn', onclick: load }, t('signin.retry')));
  }

  async function signIn(person, button) {
    button.disabled = true;
    status.className = 'form-status';
    status.textContent = t('signin.signingIn');
    try {
      const res = await fetch('/demo/token', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ user: person.id }),
      });
      if (!res.ok) throw new Error(String(res.status));
      const { token } = await res.json();
      if (!token) throw new Error('no token');
      onToken(token);
    } catch {
      button.disabled = false;
      status.className = 'form-status error';
      status.textContent = t('signin.error');
    }
  }

  load();
  main.focus();
}

function initials(name) {
  return String(name).split(/\s+/).filter((w) => /^\p{L}/u.test(w)).slice(0, 2).map((w) => w[0].toUpperCase()).join('');
}

// ——— sign-in links ———
// A school portal may hand over a token in the address (`/#token=…`). Anyone can build
// such a link with their own token, so it never signs anyone in, and never replaces the
// person signed in, without the person saying yes to "Se connecter en tant que X ?".

// The claims of a token (not checked here: the server checks the signature), or null.
export function tokenClaims(token) {
  const parts = String(token || '').split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
    if (!claims || typeof claims !== 'object' || typeof claims.sub !== 'string' || !claims.sub) return null;
    return claims;
  } catch {
    return null;
  }
}

// A person's name: the token's `name` claim, else the demo school's list, else the id.
export async function personName(claims) {
  if (typeof claims.name === 'string' && claims.name.trim()) return claims.name.trim();
  try {
    const res = await fetch('/demo/people', { headers: { accept: 'application/json' } });
    if (res.ok) {
      const found = ((await res.json()).people || []).find((p) => p.id === claims.sub);
      if (found?.name) return String(found.name);
    }
  } catch { /* no name: the id says who it is */ }
  return claims.sub;
}

let openDialog = null;

// Ask "Se connecter en tant que {name} ?" in a modal dialog; resolves true (yes) or false.
export function confirmSignIn({ name, current = null }) {
  openDialog?.close('no');
  const titleId = 'link-title';
  const yes = h('button', { type: 'button', class: 'btn btn-primary', value: 'yes' }, t('link.yes'));
  const no = h('button', { type: 'button', class: 'btn', value: 'no' }, t(current ? 'link.stay' : 'link.cancel'));
  const dialog = h('dialog', { class: 'card signin-link', 'aria-labelledby': titleId },
    h('h2', { id: titleId }, t('link.title', { name })),
    current ? h('p', { class: 'notice' }, t('link.current', { current, name })) : null,
    h('p', {}, t('link.why')),
    h('p', { class: 'actions' }, yes, ' ', no));
  document.body.append(dialog);
  openDialog = dialog;
  return new Promise((resolve) => {
    yes.addEventListener('click', () => dialog.close('yes'));
    no.addEventListener('click', () => dialog.close('no'));
    dialog.addEventListener('close', () => {
      if (openDialog === dialog) openDialog = null;
      dialog.remove();
      resolve(dialog.returnValue === 'yes');
    });
    dialog.showModal();
    no.focus(); // the safe answer first: Enter does not switch accounts
  });
}
