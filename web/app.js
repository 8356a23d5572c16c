// The application: sign-in or session, the shell (header, connection banner, urgent
// banner, navigation, live region), routing (see routes.js) and the glue between
// protocol, store and views.
//
// Two kinds of session. A device signed in with an e-mailed code (auth.js): its refresh
// credential is an HttpOnly cookie, so the session survives closed tabs and restarts; the
// access token lives in memory only and is refreshed on load, before it expires and when
// the server refuses it. A demo or portal token (`liaison.token`, per tab in
// sessionStorage, as before): it works until it expires.

import { t } from './i18n.js';
import { h, setChildren, icon } from './dom.js';
import { LiaisonClient } from './protocol.js';
import { Store } from './store.js';
import { ReadTracker } from './reads.js';
import { Directory } from './people.js';
import { navItems, makeView, fallbackProfile } from './routes.js';
import { signInView, tokenClaims, personName, confirmSignIn } from './signin.js';
import { errorText } from './compose.js';
import { CodeSession } from './auth.js';
import { confirmDialog } from './devices.js';
import { pushOffer, openedChannel, routeForChannel } from './push.js';
import { setFileToken } from './viewer.js';

const TOKEN_KEY = 'liaison.token';
const SEQS_KEY = 'liaison.seqs';
const PAGE = 30;
const root = document.getElementById('app');
let session = null;

function boot() {
  registerServiceWorker();
  const linked = takeLinkToken(location.hash);
  const invited = takeSignInLink(location.hash);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) session = new Session({ token });
  else resume(invited ?? '');
  if (linked !== null) offerLinkedSignIn(linked);
}

// On load: the device's session from its cookie (POST /api/v1/auth/refresh), else sign-in.
async function resume(email) {
  window.removeEventListener('online', retryResume);
  setChildren(root, h('main', { id: 'main', class: 'signin', tabindex: '-1' },
    h('div', { class: 'brand-big' }, icon('📒'), ' ', t('app.name')),
    h('p', { class: 'muted loading' }, t('app.loading'))));
  let auth;
  try {
    auth = await CodeSession.resume();
  } catch {
    if (!session) showOffline(email);
    return;
  }
  if (session) { // signed in otherwise meanwhile (a link in this tab)
    auth?.stop();
    return;
  }
  if (auth) startCodeSession(auth);
  else showSignIn(signInMessage, email); // a message shown meanwhile (a broken link) stays
}

let retryResume = () => {};
function showOffline(email) {
  retryResume = () => { if (!session) resume(email); };
  window.addEventListener('online', retryResume, { once: true });
  setChildren(root, h('main', { id: 'main', class: 'signin', tabindex: '-1' },
    h('div', { class: 'brand-big' }, icon('📒'), ' ', t('app.name')),
    h('p', { class: 'card notice error', role: 'alert' }, t('signin.offline')),
    h('button', { type: 'button', class: 'btn btn-primary', onclick: retryResume }, t('signin.retry'))));
}

// An invitation's link: `/#signin?email=…` fills in the address (and leaves the address bar).
function takeSignInLink(hash) {
  const m = /^#\/?signin(?:\?(.*))?$/.exec(hash);
  if (!m) return null;
  history.replaceState(null, '', location.pathname + location.search);
  return new URLSearchParams(m[1] || '').get('email') || '';
}

// A school portal may hand over a token in the address (`#token=…`). It is taken out of
// the address at once (history, bookmarks, screenshots) and only offered: see signin.js.
function takeLinkToken(hash, restore = '') {
  const m = /(?:^#|&)token=([^&]*)/.exec(hash);
  if (!m) return null;
  history.replaceState(null, '', location.pathname + location.search + restore);
  try { return decodeURIComponent(m[1]); } catch { return ''; }
}

// Registered before any session's own `hashchange` listener, so the session never sees it.
addEventListener('hashchange', (ev) => {
  const before = new URL(ev.oldURL).hash;
  const linked = takeLinkToken(location.hash, /token=/.test(before) ? '' : before);
  if (linked !== null) offerLinkedSignIn(linked);
  const invited = takeSignInLink(location.hash);
  if (invited !== null && !session) showSignIn('', invited);
});

async function offerLinkedSignIn(token) {
  const claims = tokenClaims(token);
  const expired = claims && typeof claims.exp === 'number' && claims.exp * 1000 < Date.now();
  if (!claims || expired) {
    const message = t(expired ? 'link.expired' : 'link.invalid');
    if (session) session.notify(message);
    else showSignIn(message);
    return;
  }
  const currentToken = session?.conn.token ?? null;
  const current = currentToken ? tokenClaims(currentToken) : null;
  if (session && current?.sub === claims.sub) return; // already this person: nothing changes
  const [name, currentName] = await Promise.all([
    personName(claims), session && current ? personName(current) : null]);
  if (!(await confirmSignIn({ name, current: currentName }))) return;
  if ((session?.conn.token ?? null) !== currentToken) return; // signed in otherwise meanwhile
  startSession(token);
}

// A demo or portal token: this tab only, kept in sessionStorage as before.
function startSession(token) {
  session?.stop();
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.removeItem(SEQS_KEY);
  history.replaceState(null, '', location.pathname);
  session = new Session({ token });
}

// A device session (a code, or the cookie on load): the token in memory only.
function startCodeSession(auth) {
  session?.stop();
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(SEQS_KEY);
  if (/^#\/?$/.test(location.hash)) history.replaceState(null, '', location.pathname);
  session = new Session({ token: auth.token, auth });
}

let signInMessage = '';
function showSignIn(message = '', email = '') {
  signInMessage = message;
  signInView(root, {
    message, email, onToken: startSession,
    onSignedIn: (answer) => startCodeSession(new CodeSession(answer)),
  });
}

// The app shell is kept by a service worker (sw.js), so that opening Liaison without a
// network shows a French page rather than the browser's own error.
function registerServiceWorker() {
  if (!('serviceWorker' in navigator) || !isSecureContext) return;
  navigator.serviceWorker.register('sw.js', { scope: './' }).catch(() => {});
}

function signOut(message) {
  session?.stop();
  session?.auth?.stop();
  session = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(SEQS_KEY);
  for (const key of Object.keys(sessionStorage)) if (key.startsWith('liaison.seen.')) sessionStorage.removeItem(key);
  history.replaceState(null, '', location.pathname);
  showSignIn(message);
}

const wsUrl = () => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;

class Session {
  constructor({ token, auth = null }) {
    this.auth = auth;
    this.conn = new LiaisonClient({
      url: wsUrl(), token, storageKey: SEQS_KEY, renew: auth ? () => auth.refresh() : null,
    });
    auth?.addEventListener('signedout', () => this.end(t('signin.signedOut')));
    setFileToken(() => this.auth?.token ?? this.conn.token); // uploaded files are fetched with it (issue 13)
    this.store = null;
    this.dir = null;
    this.view = null;
    this.routeKey = null;
    this.reads = null;
    this.ui = { editing: null, confirming: null, expanded: new Set(), clock: 0 };
    this.buildShell();
    const on = (type, fn) => this.conn.addEventListener(type, (ev) => fn.call(this, ev.detail));
    on('state', this.onState);
    on('ready', this.onReady);
    on('message', ({ message, live }) => this.onMessage(message, live));
    on('history', ({ messages }) => messages.forEach((m) => this.st().add(m)));
    on('update', ({ message }) => this.st().add(message, { update: true }));
    on('typing', ({ channel, user }) => this.st().setTyping(channel, user));
    on('receipt', ({ channel, seq, user }) => this.st().applyReceipt(channel, seq, user));
    on('reset', ({ channel }) => this.st().forget(channel));
    on('subscribed', this.onSubscribed);
    on('closed', ({ channel }) => this.st().setClosed(channel, true));
    on('unsubscribed', this.onUnsubscribed);
    on('unauthorized', () => this.end(t(this.auth ? 'signin.signedOut' : 'signin.expired')));
    on('fatal', () => { this.banner.textContent = t('conn.forbidden'); });
    this.onHash = () => this.route(true);
    addEventListener('hashchange', this.onHash);
    this.clock = setInterval(() => { this.ui.clock++; this.render(); }, 60_000);
    this.conn.start();
  }

  // The session ended (refused by the server): the sign-in page, once.
  end(message) {
    if (session === this) signOut(message);
  }

  stop() {
    this.conn.stop();
    removeEventListener('hashchange', this.onHash);
    clearInterval(this.clock);
    this.view?.destroy();
  }

  st() {
    if (!this.store) {
      this.store = new Store(this.conn.user);
      this.reads = new ReadTracker(this.store, this.conn);
      this.store.onChange(() => this.render());
    }
    return this.store;
  }

  // ——— shell ———

  buildShell() {
    this.meName = h('span', { class: 'me-name' });
    this.meRole = h('span', { class: 'me-role' });
    this.schoolName = h('span', { class: 'school' });
    this.banner = h('div', { class: 'conn-banner', role: 'status' });
    this.urgentBar = h('section', { class: 'urgent-banner', 'aria-label': t('urgent.region'), hidden: true });
    this.navList = h('ul', {});
    this.main = h('main', { id: 'main', tabindex: '-1' }, h('p', { class: 'muted loading' }, t('app.loading')));
    this.live = h('div', { class: 'sr-only', 'aria-live': 'polite', 'aria-atomic': 'true' });
    this.toast = h('div', { class: 'toast', role: 'status' });
    setChildren(root,
      h('a', { href: '#main', class: 'skip-link', onclick: (ev) => { ev.preventDefault(); this.focusMain(); } }, t('app.skip')),
      h('header', { class: 'topbar' },
        h('div', { class: 'brand' }, icon('📒'), h('span', {}, t('app.name')), this.schoolName),
        h('div', { class: 'who' }, this.meName, this.meRole),
        this.auth
          ? h('button', { type: 'button', class: 'btn btn-quiet switch sign-out', onclick: () => this.confirmSignOut() },
            icon('⏻'), h('span', { class: 'switch-label' }, t('header.signOut')))
          : h('button', { type: 'button', class: 'btn btn-quiet switch', onclick: () => this.confirmSwitch() },
            icon('⇄'), h('span', { class: 'switch-label' }, t('header.switch')))),
      this.banner, this.urgentBar, pushOffer(this),
      h('nav', { class: 'tabs', 'aria-label': t('header.nav') }, this.navList),
      this.main, this.toast, this.live);
  }

  onState({ state }) {
    const was = this.banner.dataset.state;
    this.banner.dataset.state = state;
    if (state === 'reconnecting') {
      setChildren(this.banner, h('span', { class: 'spinner', 'aria-hidden': 'true' }),
        h('span', {}, h('strong', {}, t('conn.reconnecting')), ' ', h('span', { class: 'hint' }, t('conn.reconnectingHint'))),
        h('button', { type: 'button', class: 'btn btn-small', onclick: () => this.conn.retryNow() }, t('conn.retryNow')));
    } else if (state === 'connecting') {
      setChildren(this.banner, h('span', { class: 'spinner', 'aria-hidden': 'true' }), t('conn.connecting'));
    } else if (state === 'online') {
      setChildren(this.banner);
      if (was === 'reconnecting') this.notify(t('conn.back'));
    }
  }

  // "Changer d'utilisateur" signs out: ask first (the safe answer has the focus).
  confirmSwitch() {
    if (this.switchDialog?.open) return;
    const titleId = 'switch-title';
    const yes = h('button', { type: 'button', class: 'btn btn-danger' }, t('switch.yes'));
    const no = h('button', { type: 'button', class: 'btn' }, t('switch.no'));
    const dialog = h('dialog', { class: 'card signin-link switch-confirm', 'aria-labelledby': titleId },
      h('h2', { id: titleId }, t('switch.title')),
      h('p', {}, t('switch.body', { name: this.conn.user?.name ?? this.meName.textContent })),
      h('p', { class: 'actions' }, yes, ' ', no));
    this.switchDialog = dialog;
    document.body.append(dialog);
    yes.addEventListener('click', () => dialog.close('yes'));
    no.addEventListener('click', () => dialog.close('no'));
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (dialog.returnValue === 'yes' && session === this) signOut();
    });
    dialog.showModal();
    no.focus();
  }

  // "Se déconnecter" (a device session): ask first, then end the session on the server.
  async confirmSignOut() {
    if (this.signingOut) return;
    this.signingOut = true;
    const yes = await confirmDialog({
      title: t('signOut.title'), body: t('signOut.body'), yes: t('signOut.yes'), no: t('signOut.no'),
      className: 'sign-out-confirm',
    });
    this.signingOut = false;
    if (!yes || session !== this) return;
    this.conn.stop();
    await this.auth.logout();
    if (session === this) signOut(t('signin.loggedOut'));
  }

  notify(text) {
    this.toast.textContent = text;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { this.toast.textContent = ''; }, 4000);
  }

  announce(text) {
    this.live.textContent = '';
    setTimeout(() => { this.live.textContent = text; }, 50);
  }

  // ——— connection events ———

  async onReady({ user, channels, reconnected }) {
    const st = this.st();
    for (const c of channels) st.setLatest(c.channel, c.seq);
    await this.loadProfile();
    this.meName.textContent = user.name;
    this.meRole.textContent = t(`role.${user.role}`);
    this.schoolName.textContent = this.dir.school?.name ?? '';
    if (reconnected) st.clearReceipts();
    for (const c of channels) if (!c.channel.startsWith('user:')) this.ensureLoaded(c.channel);
    this.route(false);
  }

  async loadProfile() {
    try {
      const p = await this.conn.request('profile');
      this.dir = new Directory(p);
      for (const [ch, seq] of Object.entries(p.reads || {})) this.st().setRead(ch, seq);
      for (const c of p.chats || []) if (typeof c.closed === 'boolean') this.st().setClosed(c.channel, c.closed);
    } catch (err) {
      if (!this.dir || !['disconnected', 'timeout'].includes(err.code)) this.dir = new Directory(fallbackProfile(this.conn.user, this.conn.channels()));
    }
  }

  onMessage(m, live) {
    const st = this.st();
    st.add(m);
    if (!live || m.deleted || m.from?.id === st.me.id || m.channel.startsWith('user:')) return;
    const text = (m.data?.title || m.data?.text || '').slice(0, 120);
    const key = m.kind === 'chat' ? 'live.chat' : m.data?.urgent ? 'live.urgent' : 'live.post';
    this.announce(t(key, { name: m.from?.name ?? '', text }));
  }

  async onSubscribed({ channel, seq }) {
    this.st().setLatest(channel, seq ?? 0);
    this.st().setClosed(channel, false); // a closed chat opened again
    await this.loadProfile();
    this.ensureLoaded(channel);
    this.route(false);
  }

  async onUnsubscribed({ channel }) {
    this.st().forget(channel);
    await this.loadProfile();
    this.route(false);
  }

  // ——— data helpers used by the views ———

  ensureLoaded(channel) {
    const st = this.st();
    if (st.list(channel).length < PAGE && st.hasMore(channel)) this.loadOlder(channel);
  }

  async loadOlder(channel) {
    const st = this.st();
    const c = st.ch(channel);
    if (c.loading) return c.loading;
    const oldest = st.oldest(channel);
    const params = oldest === null ? { channel, limit: PAGE } : { channel, before: oldest, limit: PAGE };
    c.loading = this.conn.request('history', params)
      .then((r) => { for (const m of r.messages || []) st.add(m); if (!(r.messages || []).length) c.exhausted = true; })
      .catch((err) => { if (!['disconnected', 'timeout', 'stopped'].includes(err.code)) c.exhausted = true; })
      .finally(() => { c.loading = false; st.changed(); });
    return c.loading;
  }

  fetchReceipts(channel, seq) {
    const st = this.st();
    if (st.receipt(channel, seq)) return;
    st.receipts.set(`${channel}#${seq}`, { loading: true });
    this.conn.request('receipts', { channel, seq })
      .then((r) => st.setReceipt(channel, seq, {
        read: new Set(r.read || []),
        unread: new Set(r.unread || []),
        // protocol v1.1: per family (a student's guardians); absent from a v1 server
        families: Array.isArray(r.families)
          ? r.families.map((f) => ({ student: f.student, read: new Set(f.read || []), unread: new Set(f.unread || []) }))
          : null,
        familiesRead: r.families_read,
        familiesTotal: r.families_total,
        notified: r.notified || null, // issue 12: {push, email, held, failed}
      }))
      // a server without the `receipts` operation: show nothing rather than an error
      .catch((err) => st.setReceipt(channel, seq, err.code === 'bad_request' ? { unsupported: true } : { error: true }));
  }

  // A guardian: their own household's chat with the child's teacher. Staff: the family
  // chat, or with `guardian` a private chat with that parent.
  async openChat(studentId, guardian = null) {
    const mine = this.dir.me.role === 'guardian' ? this.dir.chatAbout(studentId) : this.dir.chatAbout(studentId, this.dir.me.id, guardian);
    if (mine) return this.go(`chat/${encodeURIComponent(mine.channel)}`);
    this.notify(t('chat.opening'));
    try {
      const { channel } = await this.conn.request('open_chat', guardian ? { student: studentId, guardian } : { student: studentId });
      if (this.conn.lastSeq(channel) === undefined) await this.conn.subscribe(channel).catch(() => {});
      this.st().setLatest(channel, this.conn.lastSeq(channel) ?? 0);
      await this.loadProfile();
      this.ensureLoaded(channel);
      this.go(`chat/${encodeURIComponent(channel)}`);
    } catch (err) {
      this.notify(errorText(err));
    }
  }

  // Close a chat (its staff member or a director), or open it again.
  async setChatClosed(channel, closed) {
    try {
      if (closed) {
        await this.conn.request('close_chat', { channel });
        this.st().setClosed(channel, true);
        this.notify(t('chat.closedToast'));
      } else {
        const c = this.dir.chats.get(channel);
        const params = { student: c.student };
        if (c.guardian && this.dir.me.role !== 'guardian') params.guardian = c.guardian;
        await this.conn.request('open_chat', params);
        this.st().setClosed(channel, false);
        this.notify(t('chat.reopenedToast'));
      }
    } catch (err) {
      this.notify(errorText(err));
    }
  }

  toggleExpanded(key) {
    if (this.ui.expanded.has(key)) this.ui.expanded.delete(key);
    else this.ui.expanded.add(key);
    this.refresh();
  }

  refresh() {
    this.render();
  }

  // Focus a control (data-fk) inside the rendered message `key`.
  focusKey(key, fk) {
    const el = [...this.main.querySelectorAll('[data-key]')].find((e) => e.dataset.key === key);
    el?.querySelector(`[data-fk="${CSS.escape(fk)}"]`)?.focus();
  }

  go(route) {
    if (location.hash === `#/${route}`) this.route(true);
    else location.hash = `#/${route}`;
  }

  focusMain() {
    (this.main.querySelector('h1') || this.main).focus({ preventScroll: true });
  }

  // ——— navigation ———

  navItems() {
    return navItems(this);
  }

  route(byUser) {
    if (!this.dir || !this.store) return;
    const items = this.navItems();
    let route = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
    const opened = openedChannel(route); // a tapped push notification (issue 12, web/push.js)
    if (opened) {
      route = routeForChannel(items, opened);
      history.replaceState(null, '', `#/${route}`);
    }
    const valid = items.some((i) => i.route === route) || (route.startsWith('chat/') && route.length > 5);
    if (!valid) {
      route = items[0].route;
      history.replaceState(null, '', `#/${route}`);
    }
    if (route !== this.routeKey) {
      this.view?.destroy();
      this.reads.reset();
      this.ui.editing = this.ui.confirming = null;
      this.routeKey = route;
      this.view = this.makeView(route);
      setChildren(this.main, this.view.el);
      if (!route.startsWith('chat/')) scrollTo(0, 0);
      this.view.afterMount?.();
      if (byUser) this.focusMain();
    }
    this.render();
  }

  makeView(route) {
    return makeView(this, route);
  }

  // ——— rendering on every store change ———

  render() {
    if (!this.dir || !this.view) return;
    this.view.update();
    const st = this.store;
    const items = this.navItems();
    let total = 0;
    setChildren(this.navList, ...items.map((i) => {
      const n = st.unreadCount(i.channels);
      total += n;
      const current = this.routeKey === i.route || (i.alias && this.routeKey.startsWith(i.alias));
      return h('li', {}, h('a', { href: `#/${i.route}`, 'aria-current': current ? 'page' : null },
        i.label, n ? h('span', { class: 'badge badge-count' }, String(n), h('span', { class: 'sr-only' }, ' ', t('nav.unread', { count: n }))) : null));
    }));
    document.title = total ? t('app.titleUnread', { count: total }) : t('app.title');
    const school = this.dir.schoolChannel();
    const staffRoom = this.dir.staffChannel();
    const urgentIn = [school, staffRoom].filter((c) => c && st.channels.has(c));
    const urgent = st.unreadUrgent(urgentIn);
    this.urgentBar.hidden = !urgent.length;
    if (urgent.length) {
      const m = urgent[0];
      const target = items.find((i) => i.channels.includes(m.channel));
      setChildren(this.urgentBar,
        h('p', {}, icon('⚠'), ' ', h('strong', {}, t('urgent.banner', { title: m.data.title || (m.data.text || '').slice(0, 80) }))),
        target ? h('a', { class: 'btn btn-small', href: `#/${target.route}`, onclick: () => this.scrollToMessage(m) }, t('urgent.read')) : null);
    }
  }

  scrollToMessage(m) {
    setTimeout(() => {
      const el = [...this.main.querySelectorAll('[data-key]')].find((e) => e.dataset.key === `${m.channel}#${m.seq}`);
      if (el) {
        el.setAttribute('tabindex', '-1');
        el.scrollIntoView({ block: 'center' });
        el.focus({ preventScroll: true });
      }
    }, 50);
  }
}

boot();
