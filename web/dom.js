// Tiny DOM helpers: element creation and keyed list reconciliation.

// h('button', {class: 'x', onclick: fn, 'aria-label': '…'}, 'text', child, [more])
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'value' || k === 'checked' || k === 'selected') el[k] = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

// Replace / extend an element's children (arrays are flattened; null, undefined, false skipped).
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}
export function add(el, ...children) {
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);

let uid = 0;
export const newId = (prefix = 'id') => `${prefix}-${++uid}`;

// Keep `container`'s keyed children equal to `items` ([{key, version, render}]):
// unchanged elements stay in place (focus, scroll anchoring and IntersectionObservers
// survive), changed ones are re-rendered and keep the focus on the control that had it
// (matched by data-fk), missing ones are removed.
export function reconcile(container, items) {
  const existing = new Map();
  for (const el of [...container.children]) if (el.dataset.key) existing.set(el.dataset.key, el);
  const keep = new Set();
  let prev = null;
  for (const item of items) {
    let el = existing.get(item.key);
    if (el && el._version !== item.version) {
      const active = document.activeElement;
      const fk = el.contains(active) ? active?.dataset?.fk : null;
      const fresh = make(item);
      el.replaceWith(fresh);
      el = fresh;
      if (fk) el.querySelector(`[data-fk="${CSS.escape(fk)}"]`)?.focus();
    } else if (!el) {
      el = make(item);
    }
    keep.add(item.key);
    const ref = prev ? prev.nextSibling : container.firstChild;
    if (el !== ref) container.insertBefore(el, ref);
    prev = el;
  }
  for (const [key, el] of existing) if (!keep.has(key)) el.remove();
}

function make(item) {
  const el = item.render();
  el.dataset.key = item.key;
  el._version = item.version;
  return el;
}

// Visually hidden text for screen readers.
export const srOnly = (text) => h('span', { class: 'sr-only' }, text);

// Decorative icon (hidden from assistive technology; meaning is always given in text too).
export const icon = (glyph) => h('span', { class: 'icon', 'aria-hidden': 'true' }, glyph);

export function firstName(name) {
  return String(name || '').trim().split(/\s+/)[0] || String(name || '');
}

// Date helpers for <input type="datetime-local"> and <input type="date">.
const pad = (n) => String(n).padStart(2, '0');
export function toLocalInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
// "2025-12-04T14:00" (local) → "2025-12-04T14:00:00+01:00"
export function fromLocalInput(value) {
  if (!value) return '';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return '';
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const tz = `${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return `${toLocalInput(d.toISOString())}:00${tz}`;
}
export function todayPlus(days) {
  const d = new Date(Date.now() + days * 86_400_000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// An http(s) address as an absolute URL, or null (javascript:, data:, … are refused).
export function safeHref(url) {
  try {
    const u = new URL(String(url ?? ''), location.href);
    return ['http:', 'https:'].includes(u.protocol) ? u.href : null;
  } catch {
    return null;
  }
}

// A link that opens in a new tab without giving that page access to ours.
export function externalLink(href, ...children) {
  return h('a', { href, rel: 'noopener noreferrer', target: '_blank' }, ...children);
}

// A text with the web addresses typed in it made into links (DOM nodes only, never
// HTML): "voir https://exemple.fr/page." → ["voir ", <a>https://exemple.fr/page</a>, "."].
const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"]+|\bwww\.[^\s<>"]+/gi;
export function linkify(text) {
  const s = String(text ?? '');
  const out = [];
  let last = 0;
  for (const m of s.matchAll(URL_IN_TEXT)) {
    let url = m[0];
    // trailing punctuation belongs to the sentence, not to the address
    const trail = /[.,;:!?»)\]'’]+$/.exec(url);
    if (trail && !(trail[0].startsWith(')') && url.includes('('))) url = url.slice(0, -trail[0].length);
    const href = safeHref(url.startsWith('www.') ? `https://${url}` : url);
    if (!href) continue;
    if (m.index > last) out.push(s.slice(last, m.index));
    out.push(externalLink(href, url));
    last = m.index + url.length;
  }
  if (last < s.length) out.push(s.slice(last));
  return out;
}
