// Uploaded files (issue 13): they have no public address, so every image and document is
// fetched with the reader's token (`Authorization: Bearer`) and shown from a blob (an
// object URL, allowed by the CSP's `img-src blob:`). Thumbnails in the feed, a full-screen
// viewer for a photo, documents downloaded under their file name.

import { h, icon } from './dom.js';
import { t } from './i18n.js';

let tokenOf = () => null;
const blobs = new Map(); // file url -> Promise of an object URL (kept while the page lives)
const MAX_CACHED = 200;

// app.js tells where the current access token is (demo, portal or device session).
export function setFileToken(fn) {
  tokenOf = fn;
}

export function authHeader() {
  const token = tokenOf();
  return token ? { authorization: `Bearer ${token}` } : {};
}

// The object URL of a file of the API (`/api/v1/files/<id>?variant=…`), fetched once;
// `fresh`: asked of the server again, past every cache (a photo hidden since).
export function fileBlobUrl(url, { fresh = false } = {}) {
  if (fresh) {
    forget(url);
    return fetch(url, { headers: authHeader(), cache: 'no-store' }).then((res) => {
      if (!res.ok) throw new Error(String(res.status));
      return res.blob();
    }).then((blob) => URL.createObjectURL(blob));
  }
  if (!blobs.has(url)) {
    if (blobs.size >= MAX_CACHED) {
      const [oldest, promise] = blobs.entries().next().value;
      blobs.delete(oldest);
      promise.then((u) => URL.revokeObjectURL(u), () => {});
    }
    const promise = fetch(url, { headers: authHeader(), cache: 'default' }).then((res) => {
      if (!res.ok) throw new Error(String(res.status));
      return res.blob();
    }).then((blob) => URL.createObjectURL(blob));
    promise.catch(() => blobs.delete(url));
    blobs.set(url, promise);
  }
  return blobs.get(url);
}

function forget(url) {
  const held = blobs.get(url);
  blobs.delete(url);
  held?.then((u) => URL.revokeObjectURL(u), () => {});
}

// An <img> filled once its bytes arrived (a grey box until then, a short text on failure).
export function privateImage(url, alt, cls = 'thumb', { fresh = false } = {}) {
  const img = h('img', { class: cls, alt, decoding: 'async' });
  fileBlobUrl(url, { fresh }).then((u) => { img.src = u; }, () => { img.alt = t('upload.unavailable'); img.classList.add('broken'); });
  return img;
}

// One uploaded attachment of a message (a filled `{upload, …}`): a thumbnail that opens the
// viewer, a document to download, or the notice of a photo hidden for lack of consent.
export function uploadedAttachment(a) {
  const name = String(a?.name || '');
  if (a?.hidden) return hiddenPhoto(a, name);
  if (typeof a?.url !== 'string' || !a.url.startsWith('/api/v1/files/')) return h('span', {}, icon('📎'), ' ', name);
  if (String(a.type).startsWith('image/')) {
    const thumb = a.variants?.thumb ?? a.url;
    return h('button', {
      type: 'button', class: 'photo-thumb', 'aria-label': t('upload.open', { name }),
      onclick: () => openViewer(a),
    }, privateImage(thumb, name));
  }
  return h('button', { type: 'button', class: 'btn btn-small btn-quiet doc-link', onclick: () => download(a) },
    icon('📄'), ' ', name, h('span', { class: 'muted' }, ` (${sizeText(a.size)})`));
}

// A photo hidden for lack of consent: the notice, and for those the server still lets see it
// (staff, the guardians of the children in it) the thumbnail, marked as hidden from others.
function hiddenPhoto(a, name) {
  const el = h('span', { class: 'attachment-hidden' }, icon('🙈'), ' ', t('upload.hidden'));
  if (typeof a?.upload !== 'string' || !/^[A-Za-z0-9_-]{16,64}$/.test(a.upload)) return el;
  const url = `/api/v1/files/${a.upload}`;
  for (const v of ['', '?variant=screen']) forget(url + v); // what was fetched while it was shown
  fileBlobUrl(`${url}?variant=thumb`, { fresh: true }).then((thumb) => {
    const img = h('img', { class: 'thumb', alt: name, src: thumb });
    el.replaceWith(h('span', { class: 'hidden-for-others' },
      h('button', {
        type: 'button', class: 'photo-thumb', 'aria-label': t('upload.open', { name }),
        onclick: () => openViewer({ ...a, url, variants: { screen: `${url}?variant=screen` } }, { fresh: true }),
      }, img),
      h('span', { class: 'attachment-hidden' }, icon('🙈'), ' ', t('upload.hiddenForOthers'))));
  }, () => {});
  return el;
}

export function sizeText(bytes) {
  const n = Number(bytes) || 0;
  if (n < 1024 * 1024) return t('upload.kb', { n: Math.max(1, Math.round(n / 1024)) });
  return t('upload.mb', { n: (n / (1024 * 1024)).toFixed(1).replace('.', ',') });
}

async function download(a) {
  try {
    const u = await fileBlobUrl(a.url);
    const link = h('a', { href: u, download: a.name || 'document' });
    document.body.append(link);
    link.click();
    link.remove();
  } catch {
    alert(t('upload.unavailable')); // eslint-disable-line no-alert
  }
}

// The full-screen viewer of a photo: its screen-size variant, closed by Échap, the button
// or a click outside the image.
export function openViewer(a, { fresh = false } = {}) {
  const title = String(a?.name || t('upload.photo'));
  const close = h('button', { type: 'button', class: 'btn viewer-close' }, icon('✕'), ' ', t('upload.close'));
  const dialog = h('dialog', { class: 'viewer', 'aria-label': title },
    h('div', { class: 'viewer-bar' }, h('span', { class: 'viewer-title' }, title), close),
    privateImage(a.variants?.screen ?? a.url, title, 'viewer-image', { fresh }));
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('click', (ev) => { if (ev.target === dialog) dialog.close(); });
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  close.focus();
  return dialog;
}
