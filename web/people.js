// The people the user can see (from the `profile` reply), the students view, and
// the receipts panels ("vu par 18/25 familles", who has not seen it, per class).

import { h, firstName, newId, icon } from './dom.js';
import { t, list } from './i18n.js';

export class Directory {
  constructor(profile) {
    this.me = profile.user;
    this.schools = profile.schools || [];
    this.school = this.schools[0] || null;
    this.classes = new Map((profile.classes || []).map((c) => [c.id, c]));
    this.students = new Map((profile.students || []).map((s) => [s.id, s]));
    // a chat's household: the `guardian` of a private chat (channel chat:<student>~<staff>~<guardian>)
    this.chats = new Map((profile.chats || []).map((c) => {
      const parts = c.channel.slice(5).split('~');
      return [c.channel, { ...c, guardian: c.guardian ?? (parts.length > 2 ? parts[2] : null) }];
    }));
    this.reads = profile.reads || {};
    this.users = new Map([[this.me.id, this.me]]);
    this.childrenOf = new Map(); // guardian id → [student]
    for (const c of this.classes.values()) for (const u of c.teachers || []) this.users.set(u.id, { ...u, role: 'teacher' });
    for (const s of this.students.values()) {
      for (const g of s.guardians || []) {
        this.users.set(g.id, { ...g, role: 'guardian' });
        if (!this.childrenOf.has(g.id)) this.childrenOf.set(g.id, []);
        this.childrenOf.get(g.id).push(s);
      }
    }
    for (const c of this.chats.values()) if (c.staff) this.users.set(c.staff.id, { role: 'teacher', ...c.staff });
  }

  // A school setting (off by default, on in the demo school).
  guardiansMayStartChats() {
    return this.school?.guardians_start_chats !== false;
  }

  name(id) {
    return this.users.get(id)?.name ?? id;
  }

  // The guardian's own children, in class order.
  myChildren() {
    return this.childrenOf.get(this.me.id) || [];
  }

  classChannel(classId) {
    return `class:${classId}`;
  }

  schoolChannel() {
    return this.school ? `school:${this.school.id}` : null;
  }

  // The staff room (protocol v1.1): the school's directors and teachers only.
  staffChannel() {
    return this.school && this.me.role !== 'guardian' ? `staff:${this.school.id}` : null;
  }

  classOf(channel) {
    return channel.startsWith('class:') ? this.classes.get(channel.slice(6)) : null;
  }

  studentsOf(classId) {
    return [...this.students.values()].filter((s) => s.class === classId);
  }

  // A family is a student's guardians (separated parents: one family, two households).
  familiesOf(classId) {
    return this.studentsOf(classId).filter((s) => (s.guardians || []).length).length;
  }

  guardiansOf(classId) {
    const ids = new Set();
    for (const s of this.studentsOf(classId)) for (const g of s.guardians || []) ids.add(g.id);
    return ids;
  }

  // A chat about `studentId`: for a guardian, their own household's chat (with the child's
  // teacher); for staff, the family chat with `staffId` (guardian null) or the private chat
  // with one `guardian`.
  chatAbout(studentId, staffId = null, guardian = null) {
    const household = this.me.role === 'guardian' ? this.me.id : guardian;
    for (const c of this.chats.values()) {
      if (c.student === studentId && (!staffId || c.staff?.id === staffId) && (c.guardian ?? null) === household) return c;
    }
    return null;
  }

  chatTitle(channel) {
    const c = this.chats.get(channel);
    if (!c) return t('chat.unknown');
    const student = firstName(this.students.get(c.student)?.name ?? c.student);
    if (this.me.role === 'guardian') {
      const several = (this.students.get(c.student)?.guardians || []).length > 1;
      return t(!c.guardian && several ? 'chat.titleParentFamily' : 'chat.titleParent', { staff: c.staff?.name ?? '', student });
    }
    if (c.guardian) return t('chat.titlePrivate', { guardian: this.name(c.guardian), student });
    return t('chat.titleStaff', { student });
  }

  chatMembers(channel) {
    const c = this.chats.get(channel);
    if (!c) return [];
    const s = this.students.get(c.student);
    const guardians = c.guardian ? [c.guardian] : (s?.guardians || []).map((g) => g.id);
    const ids = [c.staff?.id, ...guardians].filter(Boolean);
    return ids.filter((id) => id !== this.me.id);
  }

  // May I close (and reopen) this chat? Its staff member or a director.
  mayCloseChat(channel) {
    const c = this.chats.get(channel);
    return !!c && (c.staff?.id === this.me.id || this.me.role === 'director');
  }

  // "Marie Dubois (parent de Léa)"
  guardianLabel(id) {
    const kids = (this.childrenOf.get(id) || []).map((s) => firstName(s.name));
    const name = this.name(id);
    if (kids.every((k) => name.includes(k))) return name; // "Claire Petit (maman de Léa)"
    return kids.length ? t('receipts.guardianOf', { name: this.name(id), children: list(kids) }) : this.name(id);
  }
}

// ——— students view (staff) ———

export function studentsView(ctx) {
  const { dir } = ctx;
  const classes = [...dir.classes.values()];
  const el = h('div', { class: 'view view-students' },
    h('h1', { class: 'view-title', tabindex: '-1' }, t('students.title')),
    classes.map((c) => {
      const hid = newId('class');
      return h('section', { class: 'card students', 'aria-labelledby': hid },
        h('h2', { id: hid }, t('students.class', { name: c.name })),
        h('ul', { class: 'plain' }, dir.studentsOf(c.id).map((s) => studentRow(ctx, s))));
    }));
  return { el, update() {}, destroy() {} };
}

// Side panel of a class feed on wide screens: its students, with a chat button each.
export function classAside(ctx, classId) {
  const { dir } = ctx;
  return h('aside', { class: 'card aside wide-only', 'aria-labelledby': `aside-${classId}` },
    h('h2', { id: `aside-${classId}` }, t('students.title')),
    h('ul', { class: 'plain' }, dir.studentsOf(classId).map((s) => studentRow(ctx, s, true))));
}

// Side panel of the school's announcements on wide screens: the classes.
export function classesAside(ctx) {
  const { dir } = ctx;
  return h('aside', { class: 'card aside wide-only', 'aria-labelledby': 'aside-classes' },
    h('h2', { id: 'aside-classes' }, t('feed.classes')),
    h('ul', { class: 'plain class-links' }, [...dir.classes.values()].map((c) => h('li', {},
      h('a', { href: `#/class/${encodeURIComponent(c.id)}` }, h('strong', {}, c.name)),
      h('span', { class: 'muted' }, t('feed.classInfo', {
        students: t('feed.studentsCount', { count: dir.studentsOf(c.id).length }),
        families: t('feed.familiesCount', { count: dir.familiesOf(c.id) }),
      }))))));
}

// A student, their guardians, and the chats a staff member may open: with the whole
// family and, when the child has two households, with each parent alone.
function studentRow(ctx, s, compact = false) {
  const { dir } = ctx;
  const guardians = (s.guardians || []).map((g) => g.name);
  const existing = dir.chatAbout(s.id, dir.me.id);
  const label = existing ? t('students.open', { name: firstName(s.name) }) : t('students.write', { name: firstName(s.name) });
  const one = (s.guardians || []).length > 1 ? s.guardians.map((g) => {
    const mine = dir.chatAbout(s.id, dir.me.id, g.id);
    return h('button', { type: 'button', class: 'btn btn-small btn-quiet', onclick: () => ctx.openChat(s.id, g.id) },
      icon('✉'), ' ', t(mine ? 'students.openOne' : 'students.writeOne', { guardian: g.name }));
  }) : null;
  return h('li', { class: compact ? 'student compact' : 'student' },
    h('div', {},
      h('strong', {}, s.name),
      h('p', { class: 'muted' }, guardians.length ? t('students.guardians', { names: list(guardians) }) : t('students.noGuardian'))),
    guardians.length
      ? h('div', { class: 'student-actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => ctx.openChat(s.id) }, icon('✉'), ' ', label), one)
      : null);
}

// ——— receipts ———

// Summary line and expandable "who has not seen it" list, for a message of mine
// (or any class/school message for the direction). Returns null when not applicable.
// A family is a student's guardians: it has seen a message when one of them has read it;
// for separated parents the list says which household has not seen it yet.
// Issue 12: who of the readers away was told, and how ("prévenus : 3 par notification…").
function notifiedLine(n) {
  if (!n || !(n.push + n.email + n.held + n.failed)) return null;
  return h('p', { class: 'notified muted' }, icon('🔔'), ' ', t('receipts.notified', n));
}

export function receiptsBlock(ctx, m, key) {
  const r = ctx.store.receipt(m.channel, m.seq);
  if (!r) {
    ctx.fetchReceipts(m.channel, m.seq);
    return h('p', { class: 'receipts muted' }, t('receipts.loading'));
  }
  if (r.unsupported) return null;
  if (r.loading) return h('p', { class: 'receipts muted' }, t('receipts.loading'));
  if (r.error) return h('p', { class: 'receipts muted' }, t('receipts.error'));
  const isAnn = m.kind === 'announcement';
  const families = r.families; // null from a v1 server: counted by guardian
  const read = families ? r.familiesRead : r.read.size;
  const total = families ? r.familiesTotal : r.read.size + r.unread.size;
  const notSeen = families ? families.filter((f) => !f.read.size) : null;
  const partial = families ? families.filter((f) => f.read.size && f.unread.size) : [];
  const open = families ? notSeen.length + partial.length : r.unread.size;
  const summary = read === total
    ? t('receipts.seenAll', { total })
    : t(isAnn ? 'receipts.readAnn' : 'receipts.seen', { read, total });
  // Urgent announcements open the list by default; the button toggles it.
  const expanded = !!m.data?.urgent !== ctx.ui.expanded.has(key);
  const panelId = `rcpt-${key.replace(/[^a-z0-9]/gi, '-')}`;
  const bar = h('div', { class: 'receipts-bar' },
    h('p', { class: 'receipts' }, icon(read < total ? '👁' : '✔'), ' ', summary),
    notifiedLine(r.notified),
    open
      ? h('button', {
        type: 'button', class: 'btn btn-small', 'aria-expanded': String(expanded), 'aria-controls': panelId,
        'data-fk': `rcpt-${key}`, onclick: () => ctx.toggleExpanded(key),
      }, expanded ? t('receipts.hide') : t(isAnn ? 'receipts.whoAnn' : 'receipts.who'))
      : null);
  if (!expanded || !open) return h('div', { class: 'receipts-block' }, bar);
  let panel;
  if (!families) panel = m.channel.startsWith('school:') ? byClass(ctx, r.unread, panelId) : flat(ctx, r.unread, panelId);
  else if (m.channel.startsWith('school:')) panel = familiesByClass(ctx, notSeen, partial, isAnn, panelId);
  else panel = familiesFlat(ctx, notSeen, partial, isAnn, panelId);
  return h('div', { class: 'receipts-block' }, bar, panel);
}

const studentFirst = (dir, id) => firstName(dir.students.get(id)?.name ?? id);
const byName = (a, b) => a.localeCompare(b, 'fr');

// "Famille d’Hugo : Sophie Durand" — nobody of the family has seen it.
function notSeenLine(dir, f) {
  return t('receipts.familyNone', { student: studentFirst(dir, f.student), names: list([...f.unread].map((g) => dir.name(g)).sort(byName)) });
}
// "Famille de Léa : vu par Claire Petit, pas encore par Julien Petit"
function partialLine(dir, f, isAnn) {
  return t(isAnn ? 'receipts.partialAnn' : 'receipts.partial', {
    student: studentFirst(dir, f.student),
    read: list([...f.read].map((g) => dir.name(g)).sort(byName)),
    unread: list([...f.unread].map((g) => dir.name(g)).sort(byName)),
  });
}

function familiesFlat(ctx, notSeen, partial, isAnn, id) {
  const { dir } = ctx;
  return h('div', { class: 'receipts-panel', id },
    notSeen.length ? [
      h('h3', {}, t(isAnn ? 'receipts.notReadTitleFlat' : 'receipts.notSeenTitle')),
      h('ul', { class: 'names not-seen' }, notSeen.map((f) => notSeenLine(dir, f)).sort(byName).map((n) => h('li', {}, n)))] : null,
    partial.length ? [
      h('h3', {}, t(isAnn ? 'receipts.partialTitleAnn' : 'receipts.partialTitle')),
      h('ul', { class: 'names partial' }, partial.map((f) => partialLine(dir, f, isAnn)).sort(byName).map((n) => h('li', {}, n)))] : null);
}

// The director's view of a school announcement: per class, the families that have not
// read it, and the separated households where only one parent has.
function familiesByClass(ctx, notSeen, partial, isAnn, id) {
  const { dir } = ctx;
  const groups = new Map(); // class name → {none: [], partial: []}
  const group = (f) => {
    const c = dir.classes.get(dir.students.get(f.student)?.class);
    const name = c?.name ?? t('receipts.otherClass');
    if (!groups.has(name)) groups.set(name, { none: [], partial: [] });
    return groups.get(name);
  };
  for (const f of notSeen) group(f).none.push(notSeenLine(dir, f));
  for (const f of partial) group(f).partial.push(partialLine(dir, f, isAnn));
  const order = [...dir.classes.values()].map((c) => c.name);
  const names = [...groups.keys()].sort((a, b) => (order.indexOf(a) + 1 || 1e9) - (order.indexOf(b) + 1 || 1e9));
  return h('div', { class: 'receipts-panel', id },
    h('h3', {}, t('receipts.notReadTitle')),
    names.map((name) => {
      const g = groups.get(name);
      return h('section', { class: 'receipts-class' },
        h('h4', {}, t('receipts.classLine', { class: name, count: g.none.length })),
        h('ul', { class: 'names' }, g.none.sort(byName).map((n) => h('li', {}, n)),
          g.partial.sort(byName).map((n) => h('li', { class: 'partial' }, n))));
    }));
}

function flat(ctx, unread, id) {
  const names = [...unread].map((u) => ctx.dir.guardianLabel(u)).sort();
  return h('div', { class: 'receipts-panel', id },
    h('h3', {}, t('receipts.notSeenTitle')),
    h('ul', { class: 'names' }, names.map((n) => h('li', {}, n))));
}

// Unread guardians grouped by the classes of their children (a parent with children
// in two classes appears in both).
function byClass(ctx, unread, id) {
  const { dir } = ctx;
  const groups = [];
  const placed = new Set();
  for (const c of dir.classes.values()) {
    const ids = [...dir.guardiansOf(c.id)].filter((g) => unread.has(g));
    ids.forEach((g) => placed.add(g));
    if (ids.length) groups.push({ name: c.name, ids });
  }
  const rest = [...unread].filter((g) => !placed.has(g));
  if (rest.length) groups.push({ name: t('receipts.otherClass'), ids: rest });
  return h('div', { class: 'receipts-panel', id },
    h('h3', {}, t('receipts.notReadTitle')),
    groups.map((g) => h('section', { class: 'receipts-class' },
      h('h4', {}, t('receipts.classLine', { class: g.name, count: g.ids.length })),
      h('ul', { class: 'names' }, g.ids.map((u) => dir.guardianLabel(u)).sort().map((n) => h('li', {}, n))))));
}
