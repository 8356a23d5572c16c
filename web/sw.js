// Liaison's service worker: keeps the app shell (the page, its style, scripts and icon)
// so that opening Liaison while the network or the server is down shows a page in French
// instead of the browser's own error. Everything is asked of the network first (a new
// version is used at once); the cache answers only when the network does not. Nothing
// else is touched: not the WebSocket, not the API (/api/: tokens, sign-in, sessions are never
// cached, not even as a fallback), not the demo routes, not the messages. It also shows the
// push notifications (below), remembering per channel only the last seq it announced.

const CACHE = 'liaison-shell-v3';
const SHELL = [
  './', 'index.html', 'offline.html', 'style.css', 'icon.svg', 'icon-192.png', 'icon-512.png',
  'manifest.webmanifest',
  'app.js', 'auth.js', 'board.js', 'chat.js', 'compose.js', 'devices.js', 'dom.js', 'feed.js', 'i18n.js', 'people.js',
  'protocol.js', 'reads.js', 'routes.js', 'sequencer.js', 'signin.js', 'store.js', 'offline.js',
  'preferences.js', 'schedule.js', 'uploads.js', 'viewer.js', 'consent.js', 'push.js', 'retention.js',
];
const NEVER = ['/api/', '/demo/', '/ws', '/healthz', '/readyz', '/openapi.json'];
const scope = new URL(self.registration.scope);
const SHELL_URLS = new Set(SHELL.map((p) => new URL(p, scope).href));

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith('liaison-shell-') && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== scope.origin) return;
  if (NEVER.some((p) => url.pathname === p || url.pathname.startsWith(p.endsWith('/') ? p : `${p}/`))) return;
  if (req.mode === 'navigate') {
    event.respondWith(navigation(req, url));
  } else if (SHELL_URLS.has(url.origin + url.pathname)) {
    event.respondWith(shellFile(req));
  }
});

// A page: the network; without it, the French offline page (it tries again by itself).
async function navigation(req, url) {
  try {
    return await fetch(req);
  } catch {
    const cache = await caches.open(CACHE);
    return (await cache.match(new URL('offline.html', scope).href)) || Response.error();
  }
}

// A file of the shell: the network (and keep the copy fresh); without it, the copy.
async function shellFile(req) {
  const cache = await caches.open(CACHE);
  try {
    const res = await fetch(req);
    if (res.ok) cache.put(req, res.clone()).catch(() => {});
    return res;
  } catch {
    return (await cache.match(req, { ignoreSearch: true })) || Response.error();
  }
}

// Push notifications (issue 12): the server's payload is JSON {channel, seq, kind, title,
// author, urgent, count, body?}; `body` (the text) only when the person chose to see it on the
// lock screen. One notification per channel (tag): a newer one replaces it.
//
// Shown once. Pushes are delivered at least once: a push the push service accepted just before
// a server worker died is sent again after the restart. What a push announces is (channel,
// seq) — for the quiet hours' "3 nouveaux messages", the last seq — so a push whose seq is not
// above the one this device last announced for its channel is a repeat (or older than what was
// announced): nothing new is shown and nothing alerts.
// - Its channel's notification still shown: it is shown again as it is (its own title, text,
//   data and time) with `renotify: false`, which replaces it silently. The browsers want every
//   push to show a notification (userVisibleOnly); this is one, and no second alert.
// - Already dismissed or tapped: nothing is shown. The family has seen it; showing it again is
//   the very double notification we avoid. The cost is a push that shows nothing, which the
//   browsers tolerate now and then (Chrome spends a small allowance before showing its own
//   "updated in the background" notice; Safari may end a subscription after several): repeats
//   only come from a worker's crash, a few per crash at most, never in normal running.
// The last announced seq per channel is kept in a cache of its own (a worker has no
// localStorage), written after the notification is shown; a push without a seq is shown.
const PUSHES = 'liaison-pushes-v1';
let pushes = Promise.resolve(); // one push handled at a time: a repeat never races its first copy

self.addEventListener('push', (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch { data = {}; }
  const run = pushes.then(() => showPush(data));
  pushes = run.catch(() => {});
  event.waitUntil(run);
});

async function showPush(data) {
  const channel = typeof data.channel === 'string' ? data.channel : '';
  const seq = Number.isSafeInteger(data.seq) ? data.seq : null;
  const tag = channel || 'liaison';
  const [shown] = await self.registration.getNotifications({ tag });
  if (channel && seq !== null) {
    const announced = Math.max(Number.isSafeInteger(shown?.data?.seq) ? shown.data.seq : 0, await lastAnnounced(channel));
    if (seq <= announced) {
      if (!shown) return undefined;
      return self.registration.showNotification(shown.title, {
        body: shown.body, tag, renotify: false, requireInteraction: shown.requireInteraction,
        icon: shown.icon, timestamp: shown.timestamp, data: shown.data,
      });
    }
  }
  const title = typeof data.title === 'string' && data.title ? data.title : 'Liaison';
  await self.registration.showNotification(title, {
    body: typeof data.body === 'string' ? data.body : '',
    tag,
    renotify: true,
    requireInteraction: data.urgent === true,
    icon: new URL('icon-192.png', scope).href,
    data: { channel, seq, url: openUrl(channel) },
  });
  if (channel && seq !== null) await announce(channel, seq);
  return undefined;
}

function announcedKey(channel) {
  return new URL(`push-announced/${encodeURIComponent(channel)}`, scope).href;
}

// The last seq announced for `channel` on this device (0: none, or the cache is unreadable:
// then a repeat is shown again rather than a new message lost).
async function lastAnnounced(channel) {
  try {
    const found = await (await caches.open(PUSHES)).match(announcedKey(channel));
    const seq = found ? (await found.json()).seq : 0;
    return Number.isSafeInteger(seq) ? seq : 0;
  } catch {
    return 0;
  }
}

async function announce(channel, seq) {
  try {
    const cache = await caches.open(PUSHES);
    await cache.put(announcedKey(channel), new Response(JSON.stringify({ seq }), { headers: { 'Content-Type': 'application/json' } }));
  } catch { /* not kept: a repeat of it would be shown again */ }
}

// The page that opens a channel: the app turns #/open/CHANNEL into that channel's page.
function openUrl(channel) {
  return new URL(channel ? `./#/open/${encodeURIComponent(channel)}` : './', scope).href;
}

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = event.notification.data?.url || openUrl(event.notification.data?.channel || '');
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const open = windows.find((w) => new URL(w.url).origin === scope.origin);
    if (open) {
      await open.focus().catch(() => {}); // focusing may be refused; open the channel anyway
      return open.navigate ? open.navigate(url) : open.postMessage({ type: 'open', url });
    }
    return self.clients.openWindow(url);
  })());
});
