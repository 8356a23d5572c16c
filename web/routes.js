// What each role sees: the navigation (one tab per child, per class, …) and the view
// of each route (#/child/ID, #/class/ID, #/school, #/staff, #/board, #/students, #/chats, #/chat/CHANNEL,
// and #/devices for a device signed in with a code).

import { t } from './i18n.js';
import { h, icon, firstName } from './dom.js';
import { classAside, classesAside, studentsView } from './people.js';
import { feedView, upcomingAside } from './feed.js';
import { chatsView } from './chat.js';
import { devicesView } from './devices.js';
import { preferencesView } from './preferences.js';
import { boardView } from './board.js';
import { consentView } from './consent.js';

export function navItems(ctx) {
  const { dir } = ctx;
  const school = dir.schoolChannel();
  const chats = [...ctx.st().channels.keys()].filter((c) => c.startsWith('chat:'));
  const items = [];
  const withSchool = (ch) => (school ? [ch, school] : [ch]);
  if (dir.me.role === 'guardian') {
    for (const s of dir.myChildren()) items.push({ route: `child/${s.id}`, label: firstName(s.name), channels: withSchool(`class:${s.class}`) });
  } else {
    if (dir.me.role === 'director' && school) items.push({ route: 'school', label: t('nav.school'), channels: [school] });
    for (const c of dir.classes.values()) {
      const ch = `class:${c.id}`;
      items.push({ route: `class/${c.id}`, label: c.name, channels: dir.me.role === 'director' ? [ch] : withSchool(ch) });
    }
    const staffRoom = dir.staffChannel();
    if (staffRoom && ctx.st().channels.has(staffRoom)) items.push({ route: 'staff', label: t('nav.staff'), channels: [staffRoom] });
    items.push({ route: 'board', label: t('nav.board'), channels: [] }); // issue 17: the director's board
    items.push({ route: 'students', label: t('nav.students'), channels: [] });
  }
  items.push({ route: 'chats', label: t('nav.messages'), channels: chats, alias: 'chat/' });
  if (dir.me.role === 'guardian') items.push({ route: 'consents', label: t('consent.nav'), channels: [] }); // issue 13
  items.push({ route: 'notifications', label: t('prefs.nav'), channels: [] }); // issue 12
  if (ctx.auth) items.push({ route: 'devices', label: t('devices.nav'), channels: [] });
  return items;
}

export function makeView(ctx, route) {
  const { dir } = ctx;
  const [name, arg] = [route.split('/')[0], route.slice(route.indexOf('/') + 1)];
  const school = dir.schoolChannel();
  if (name === 'child') {
    const s = dir.students.get(arg);
    const cls = dir.classes.get(s.class);
    const teachers = (cls?.teachers || []).map((u) => u.name).join(', ');
    const upcoming = upcomingAside(ctx, `class:${s.class}`);
    return feedView(ctx, {
      title: t('feed.child', { name: firstName(s.name) }),
      subtitle: [t('feed.childClass', { class: cls?.name ?? s.class }), teachers && t('feed.teachers', { names: teachers })].filter(Boolean).join(' · '),
      channels: school ? [`class:${s.class}`, school] : [`class:${s.class}`],
      actions: [parentActions(ctx, s), upcoming.phone],
      aside: upcoming,
    });
  }
  if (name === 'class') {
    const c = dir.classes.get(arg);
    const ch = `class:${arg}`;
    if (ctx.conn.lastSeq(ch) === undefined) {
      ctx.conn.subscribe(ch).then((ok) => { ctx.st().setLatest(ch, ok.seq ?? 0); ctx.ensureLoaded(ch); }).catch(() => {});
    }
    const students = dir.studentsOf(arg).length;
    return feedView(ctx, {
      title: t('feed.class', { name: c?.name ?? arg }),
      subtitle: t('feed.classInfo', { students: t('feed.studentsCount', { count: students }), families: t('feed.familiesCount', { count: dir.familiesOf(arg) }) }),
      channels: dir.me.role === 'director' || !school ? [ch] : [ch, school],
      compose: { channel: ch, kinds: ['post', 'event', 'homework'], name: c?.name ?? arg },
      aside: classAside(ctx, arg),
    });
  }
  if (name === 'school') {
    return feedView(ctx, {
      title: t('feed.school'), channels: [school],
      compose: { channel: school, kinds: ['announcement'], name: dir.school?.name ?? '' },
      aside: classesAside(ctx),
    });
  }
  if (name === 'staff') {
    const ch = dir.staffChannel();
    return feedView(ctx, {
      title: t('feed.staff'), subtitle: t('feed.staffInfo'), channels: [ch],
      compose: { channel: ch, kinds: ['post'], name: t('feed.staff'), urgentAs: dir.me.role === 'director' ? 'announcement' : null },
    });
  }
  if (name === 'students') return studentsView(ctx);
  if (name === 'devices') return devicesView(ctx);
  if (name === 'notifications') return preferencesView(ctx);
  if (name === 'board') return boardView(ctx);
  if (name === 'consents') return consentView();
  return chatsView(ctx, name === 'chat' ? arg : null);
}

// "Écrire à l'enseignant·e": the parent's own household's chat about this child.
function parentActions(ctx, student) {
  const chat = ctx.dir.chatAbout(student.id);
  if (!chat && !ctx.dir.guardiansMayStartChats()) return null;
  return h('p', { class: 'feed-actions' }, chat
    ? h('a', { class: 'btn', href: `#/chat/${encodeURIComponent(chat.channel)}` }, icon('💬'), ' ', ctx.dir.chatTitle(chat.channel))
    : h('button', { type: 'button', class: 'btn', onclick: () => ctx.openChat(student.id) }, icon('✉'), ' ', t('feed.writeToTeacher')));
}

// Without the `profile` extension: what the channel names alone tell.
export function fallbackProfile(user, names) {
  const ids = (prefix) => names.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length));
  return {
    user,
    schools: ids('school:').map((id) => ({ id, name: id })),
    classes: ids('class:').map((id) => ({ id, name: id, teachers: [] })),
    students: [],
    chats: ids('chat:').map((id) => ({ channel: `chat:${id}`, student: '', staff: null })),
    reads: {},
  };
}
