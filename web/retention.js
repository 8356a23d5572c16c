// The school year on the director's board (issue 15): when the year ends (classes frozen),
// when its classes are purged, and how many people who left will be erased and when.
// Server side: GET /api/v1/admin/schools/{id}/retention with the director's token
// (docs/http-api.md, "Children's data"). Loads on its own: a failure leaves the line out.

import { t, formatDay } from './i18n.js';
import { h, setChildren, icon } from './dom.js';

export function retentionNotice(ctx, schoolId) {
  const el = h('section', { class: 'card notice retention', 'aria-labelledby': 'board-retention' });
  el.hidden = true;
  (async () => {
    try {
      const token = ctx.auth?.token ?? ctx.conn.token;
      const res = await fetch(`/api/v1/admin/schools/${encodeURIComponent(schoolId)}/retention`,
        { headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, cache: 'no-store' });
      if (!res.ok) return;
      const report = await res.json();
      const year = (report.years || []).filter((y) => !y.purged).at(-1);
      if (!year) return;
      const due = (report.leavers || []).filter((l) => !l.kept);
      setChildren(el,
        h('h2', { id: 'board-retention' }, icon('📅'), ' ', t('retention.title')),
        h('p', {}, t(year.frozen ? 'retention.frozen' : 'retention.ends', { date: formatDay(year.ends) }),
          ' ', t('retention.purge', { date: formatDay(year.purge_on) })),
        due.length ? h('p', { class: 'muted' }, t('retention.leavers', { count: due.length, date: formatDay(due[0].erase_on) })) : null);
      el.hidden = false;
    } catch { /* the board stands without it */ }
  })();
  return el;
}
