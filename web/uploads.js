// Attaching photos (camera or gallery) and documents from a composer (issue 13): each file
// is sent at once to POST /api/v1/uploads with a progress bar (XMLHttpRequest's upload
// progress), and the message carries `{upload, students}`. For a photo in a class or the
// school, the teacher ticks the children who appear (or says none does), seeing whose
// image consent is missing (GET /api/v1/classes/{id}/consents).

import { h, setChildren, newId, icon } from './dom.js';
import { t, list } from './i18n.js';
import { authHeader, sizeText } from './viewer.js';

const UPLOADS = '/api/v1/uploads';

// Send one file; resolves the server's `{id, type, size, …}`, rejects an Error whose
// `status` and `code` say why. `onProgress(fraction)` follows the bytes sent.
export function uploadFile(file, onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', UPLOADS);
    for (const [k, v] of Object.entries(authHeader())) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (ev) => { if (ev.lengthComputable) onProgress(ev.loaded / ev.total); });
    xhr.addEventListener('load', () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201) resolve(body);
      else reject(Object.assign(new Error(body?.error?.message || String(xhr.status)), { status: xhr.status, code: body?.error?.code }));
    });
    xhr.addEventListener('error', () => reject(Object.assign(new Error('network'), { status: 0 })));
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
}

function uploadError(err) {
  if (err.status === 413) return t('upload.tooLarge');
  if (err.status === 400) return t('upload.notAccepted');
  if (err.status === 429) return t('error.rate_limited');
  return t('upload.failed');
}

// The attachment part of a composer for `channel`. `collect()` gives the attachments, or
// `{error}` (a text to show) while a file is still on its way or the children are not said.
export function attachPicker(ctx, channel) {
  const classId = channel.startsWith('class:') ? channel.slice(6) : null;
  const needsChildren = channel.startsWith('class:') || channel.startsWith('school:');
  const items = []; // {file, li, upload?, error?, done: Promise}
  const listEl = h('ul', { class: 'plain upload-list', 'aria-live': 'polite' });
  // The file inputs stay hidden and out of the Tab order (tabindex -1): a keyboard user meets
  // each control once, as the visible button that opens its chooser, with the buttons' focus ring.
  const camera = h('input', { type: 'file', id: newId('camera'), accept: 'image/*', capture: 'environment', class: 'sr-only', tabindex: '-1', 'aria-hidden': 'true' });
  const files = h('input', { type: 'file', id: newId('files'), accept: 'image/*,application/pdf', multiple: true, class: 'sr-only', tabindex: '-1', 'aria-hidden': 'true', 'data-upload': 'files' });
  const children = h('fieldset', { class: 'upload-children', hidden: true });
  let consents = null; // student id -> {name, complete}
  let nobody = null;

  function add(fileList) {
    for (const file of fileList) {
      const bar = h('progress', { max: 100, value: 0 });
      const state = h('span', { class: 'muted' }, t('upload.sending'));
      const remove = h('button', { type: 'button', class: 'btn btn-small btn-quiet', 'aria-label': t('upload.remove', { name: file.name }) }, icon('✕'));
      const li = h('li', { class: 'upload-item' }, icon(file.type.startsWith('image/') ? '🖼' : '📄'), ' ',
        h('span', { class: 'upload-name' }, file.name), ' ', h('span', { class: 'muted' }, sizeText(file.size)), ' ', bar, ' ', state, remove);
      const item = { file, li, upload: null, error: null };
      item.done = uploadFile(file, (f) => { bar.value = Math.round(f * 100); }).then((up) => {
        item.upload = up;
        bar.value = 100;
        state.textContent = t('upload.ready');
        showChildren();
      }, (err) => {
        item.error = uploadError(err);
        state.textContent = item.error;
        state.className = 'form-status error';
        bar.hidden = true;
      });
      remove.addEventListener('click', () => { items.splice(items.indexOf(item), 1); li.remove(); showChildren(); });
      items.push(item);
      listEl.append(li);
    }
    showChildren();
  }
  camera.addEventListener('change', () => { add(camera.files); camera.value = ''; });
  files.addEventListener('change', () => { add(files.files); files.value = ''; });

  const photos = () => items.filter((i) => i.file.type.startsWith('image/') || i.upload?.type?.startsWith('image/'));
  async function showChildren() {
    children.hidden = !needsChildren || photos().length === 0;
    if (children.hidden || children.dataset.filled) return;
    children.dataset.filled = '1';
    const students = classId ? ctx.dir.studentsOf(classId) : [];
    consents = new Map();
    if (classId) {
      try {
        const res = await fetch(`/api/v1/classes/${encodeURIComponent(classId)}/consents`, { headers: authHeader(), cache: 'no-store' });
        if (res.ok) for (const s of (await res.json()).students) consents.set(s.student, s);
      } catch { /* shown without the states */ }
    }
    const boxes = students.map((s) => {
      const id = newId('child');
      const known = consents.get(s.id);
      const missing = known && !known.complete;
      return h('span', { class: missing ? 'child-check consent-missing' : 'child-check' },
        h('input', { type: 'checkbox', id, name: 'students', value: s.id }),
        h('label', { for: id }, s.name, missing ? h('span', { class: 'badge badge-warn' }, icon('⚠'), ' ', t('upload.noConsent')) : null));
    });
    const nobodyId = newId('nobody');
    nobody = h('input', { type: 'checkbox', id: nobodyId, name: 'nobody' });
    setChildren(children, h('legend', {}, t('upload.whoAppears')), boxes,
      h('span', { class: 'child-check' }, nobody, h('label', { for: nobodyId }, t('upload.nobody'))),
      h('p', { class: 'hint' }, t('upload.consentHint')));
  }

  function collect() {
    if (items.some((i) => !i.upload && !i.error)) return { error: t('upload.wait') };
    const failed = items.find((i) => i.error);
    if (failed) return { error: t('upload.removeFailed', { name: failed.file.name }) };
    const ticked = [...children.querySelectorAll('input[name=students]:checked')].map((c) => c.value);
    const hasPhoto = items.some((i) => i.upload.type.startsWith('image/'));
    if (needsChildren && hasPhoto && !ticked.length && !nobody?.checked) return { error: t('upload.sayWho') };
    const missing = ticked.filter((id) => consents?.get(id) && !consents.get(id).complete);
    return {
      attachments: items.map((i) => (i.upload.type.startsWith('image/') && needsChildren
        ? { upload: i.upload.id, students: ticked }
        : { upload: i.upload.id })),
      missing: missing.map((id) => ctx.dir.students.get(id)?.name ?? id),
    };
  }

  function reset() {
    items.length = 0;
    setChildren(listEl);
    setChildren(children);
    delete children.dataset.filled;
    children.hidden = true;
  }

  const el = h('div', { class: 'attach' },
    h('div', { class: 'attach-buttons' },
      camera, h('button', { type: 'button', class: 'btn btn-small', onclick: () => camera.click() }, icon('📷'), ' ', t('upload.camera')),
      files, h('button', { type: 'button', class: 'btn btn-small', onclick: () => files.click() }, icon('📎'), ' ', t('upload.files'))),
    listEl, children);
  return { el, collect, reset, missingText: (names) => t('upload.consentMissing', { names: list(names) }) };
}
