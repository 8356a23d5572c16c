// Push notifications (issue 12): after sign-in, a button "Recevoir les notifications" — never a
// prompt on load. A click asks the browser's permission, subscribes with the server's VAPID key
// (GET /api/v1/push/key) and registers the subscription (POST /api/v1/me/push-subscriptions).
// The service worker (sw.js) shows the pushes and, when one is tapped, opens #/open/CHANNEL,
// which `routeForChannel` turns into the page of that channel for this person.

import { t } from './i18n.js';
import { h, setChildren } from './dom.js';
import { userApi } from './schedule.js';

const DISMISSED = 'liaison.push.dismissed';

export function pushSupported() {
  return isSecureContext && 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

// The page of `channel` among the person's pages (their `channels`), or a chat's own page.
export function routeForChannel(items, channel) {
  if (channel.startsWith('chat:')) return `chat/${channel}`;
  const exact = items.find((i) => i.channels.length && i.channels[0] === channel);
  const any = exact || items.find((i) => i.channels.includes(channel));
  return any ? any.route : items[0].route;
}

// "#/open/class:cp-a" (a tapped notification) → the channel, else null.
export function openedChannel(route) {
  return route.startsWith('open/') && route.length > 5 ? route.slice(5) : null;
}

function b64urlToBytes(text) {
  const raw = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

async function subscribe(ctx) {
  if ((await Notification.requestPermission()) !== 'granted') throw Object.assign(new Error('denied'), { code: 'denied' });
  const registration = await navigator.serviceWorker.ready;
  const { vapid_public_key: key } = await userApi(ctx, '/push/key');
  let sub = await registration.pushManager.getSubscription();
  if (!sub) sub = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64urlToBytes(key) });
  await userApi(ctx, '/me/push-subscriptions', { method: 'POST', body: sub.toJSON() });
}

// The offer, as an element for the shell: hidden when pushes are not possible here, already
// on, refused, or dismissed.
export function pushOffer(ctx) {
  const box = h('section', { class: 'push-offer', 'aria-label': t('push.region'), hidden: true });
  if (!pushSupported() || localStorage.getItem(DISMISSED)) return box;
  const show = (...children) => { setChildren(box, ...children); box.hidden = false; };
  const offer = () => show(
    h('p', {}, t('push.offer')),
    h('button', { type: 'button', class: 'btn btn-small', onclick: () => accept() }, t('push.enable')),
    h('button', { type: 'button', class: 'btn btn-small btn-quiet', onclick: () => { localStorage.setItem(DISMISSED, '1'); box.hidden = true; } }, t('push.later')));
  const accept = async () => {
    show(h('p', { role: 'status' }, t('push.enabling')));
    try {
      await subscribe(ctx);
      show(h('p', { role: 'status' }, t('push.enabled')));
      setTimeout(() => { box.hidden = true; }, 4000);
    } catch (err) {
      show(h('p', { role: 'status' }, t(err.code === 'denied' ? 'push.denied' : 'push.failed')));
    }
  };
  if (Notification.permission === 'denied') return box;
  navigator.serviceWorker.ready
    .then((reg) => reg.pushManager.getSubscription())
    .then((sub) => { if (!sub || Notification.permission !== 'granted') offer(); })
    .catch(() => {});
  return box;
}
