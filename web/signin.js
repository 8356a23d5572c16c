// Sign-in. Everywhere: the e-mail address, then the 6-digit code sent to it (issue 11).
// In demo mode (GET /demo/people answers; 404 elsewhere) the demo school's people come
// first, by role, one tap signing in; their codes can be read on /demo/outbox.

import { h, setChildren, icon } from './dom.js';
import { t } from './i18n.js';
import { requestCode, verifyCode } from './auth.js';

const ROLES = ['director', 'teacher', 'guardian'];
const ROLE_ICON = { director: '🏫', teacher: '🍎', guardian: '👪' };

// onToken(token): a demo token; onSignedIn(answer): a code's session ({access_token, …}).
export function signInView(root, { onToken, onSignedIn, message = '', email = '' }) {
  const status = h('p', { class: 'form-status', role: 'status' });
  const title = h('h1', { id: 'signin-title' }, t('signin.title'));
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
    if (res.status === 404) { // not in demo mode: the code sign-in only
      title.textContent = t('signin.codeTitle');
      setChildren(body, codeForm({ email, demo: false, onSignedIn, headingLevel: null }));
      body.querySelector('input')?.focus();
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
      }),
      codeForm({ email, demo: true, onSignedIn, headingLevel: 'h2' }));
    if (email) body.querySelector('form.signin-code input')?.focus();
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

// ——— the e-mailed code ———

const wrongCode = (answer) => Number.isInteger(answer?.attempts_left);

// "15 minutes", "1 minute", "40 secondes"
function waitText(seconds) {
  const s = Math.max(1, Math.round(Number(seconds) || 60));
  return s >= 60 ? t('code.minutes', { count: Math.ceil(s / 60) }) : t('code.seconds', { count: s });
}

// Two steps in one card: the address, then the code. `email` prefills the address (an
// invitation's link); `demo` adds the link to the demo's outbox.
function codeForm({ email = '', demo, onSignedIn, headingLevel }) {
  let address = '';
  let lockedUntil = 0;
  let unlockTimer = 0;
  const card = h('section', { class: 'card signin-code-card', 'aria-labelledby': headingLevel ? 'code-title' : 'signin-title' });
  const say = (text, error = false) => {
    const st = card.querySelector('.form-status');
    st.className = error ? 'form-status error' : 'form-status';
    st.setAttribute('role', error ? 'alert' : 'status');
    st.textContent = text;
  };
  const heading = headingLevel ? h(headingLevel, { id: 'code-title' }, icon('✉'), ' ', t('code.title')) : null;

  function askAddress(prefill) {
    const input = h('input', {
      id: 'signin-email', name: 'email', type: 'email', autocomplete: 'email', inputmode: 'email',
      required: true, maxlength: '320', value: prefill, 'aria-describedby': 'signin-email-hint',
    });
    const button = h('button', { type: 'submit', class: 'btn btn-primary' }, t('code.send'));
    const form = h('form', { class: 'signin-code', novalidate: true, 'data-step': 'email' },
      h('label', { for: 'signin-email' }, t('code.email')),
      h('p', { id: 'signin-email-hint', class: 'muted hint' }, t('code.emailHint')),
      input,
      h('p', { class: 'actions' }, button),
      h('p', { class: 'form-status', role: 'status' }));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const value = input.value.trim();
      if (!value || !input.checkValidity()) {
        input.setAttribute('aria-invalid', 'true');
        say(t('code.emailInvalid'), true);
        input.focus();
        return;
      }
      input.removeAttribute('aria-invalid');
      button.disabled = true;
      say(t('code.sending'));
      try {
        await requestCode(value);
        address = value;
        askCode(t('code.sent', { email: value }));
      } catch (err) {
        button.disabled = false;
        say(requestError(err), true);
      }
    });
    setChildren(card, heading, h('p', { class: 'lead' }, t('code.intro')), form);
    return input;
  }

  function askCode(notice) {
    const input = h('input', {
      id: 'signin-code', name: 'code', type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code',
      required: true, maxlength: '9', pattern: '[0-9 ]*', 'aria-describedby': 'signin-code-hint', spellcheck: 'false',
    });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, t('code.submit'));
    const resend = h('button', { type: 'button', class: 'btn' }, t('code.resend'));
    const change = h('button', { type: 'button', class: 'btn btn-quiet' }, t('code.change'));
    const form = h('form', { class: 'signin-code', novalidate: true, 'data-step': 'code' },
      h('p', { class: 'notice sent' }, notice),
      h('label', { for: 'signin-code' }, t('code.code')),
      h('p', { id: 'signin-code-hint', class: 'muted hint' }, t('code.codeHint')),
      input,
      h('p', { class: 'actions' }, submit),
      h('p', { class: 'form-status', role: 'status' }),
      demo ? h('p', { class: 'demo-outbox muted' }, t('code.demoOutbox'), ' ',
        h('a', { href: '/demo/outbox', target: '_blank', rel: 'noopener noreferrer' }, t('code.demoOutboxLink'))) : null,
      h('p', { class: 'actions secondary' }, resend, ' ', change));
    const locked = () => Date.now() < lockedUntil;
    const lock = (seconds) => {
      lockedUntil = Date.now() + seconds * 1000;
      submit.disabled = resend.disabled = true;
      clearTimeout(unlockTimer);
      unlockTimer = setTimeout(() => {
        if (!card.isConnected) return;
        submit.disabled = resend.disabled = false;
        say(t('code.unlocked'));
      }, seconds * 1000);
    };
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (locked()) return;
      const code = input.value.replace(/\D/g, '');
      if (code.length !== 6) {
        input.setAttribute('aria-invalid', 'true');
        say(t('code.incomplete'), true);
        input.focus();
        return;
      }
      submit.disabled = true;
      say(t('signin.signingIn'));
      let answer;
      try {
        answer = await verifyCode(address, code);
      } catch (err) {
        submit.disabled = false;
        input.setAttribute('aria-invalid', 'true');
        if (err.status === 400 && wrongCode(err.body)) {
          say(t('code.wrong', { count: err.body.attempts_left }), true);
          input.select();
        } else if (err.status === 401) {
          say(t('code.expired'), true);
          resend.focus();
        } else if (err.status === 429) {
          const wait = Number(err.body.retry_after) || 900;
          say(t('code.locked', { wait: waitText(wait) }), true);
          lock(wait);
        } else if (err.status === 400) {
          say(t('code.incomplete'), true);
          input.focus();
        } else {
          say(requestError(err), true);
        }
        return;
      }
      say(t('signin.signingIn'));
      onSignedIn(answer);
    });
    resend.addEventListener('click', async () => {
      resend.disabled = true;
      say(t('code.sending'));
      try {
        await requestCode(address);
        say(t('code.resent'));
        input.value = '';
        input.removeAttribute('aria-invalid');
        input.focus();
      } catch (err) {
        say(requestError(err), true);
      } finally {
        if (!locked()) resend.disabled = false;
      }
    });
    change.addEventListener('click', () => {
      clearTimeout(unlockTimer);
      lockedUntil = 0;
      askAddress(address).focus();
    });
    setChildren(card, heading, form);
    if (locked()) lock((lockedUntil - Date.now()) / 1000);
    input.focus();
  }

  function requestError(err) {
    if (err.status === 429) return t('code.tooFast', { wait: waitText(err.body.retry_after) });
    if (err.status === 503) return t('code.unavailable');
    if (err.status === 400) return t('code.emailInvalid');
    return t('signin.error');
  }

  askAddress(email);
  return card;
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
