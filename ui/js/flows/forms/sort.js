// @ts-check
/**
 * The client sort form (`"x-widget": "client-sort"`, `db.query`'s `sort`): where the sort text
 * comes from (usually the request's `sort` query field) and the columns a client may sort by.
 * The client writes `-created_at,title`; the server holds one statement per allowed order.
 */
import { h } from '../../dom.js';
import { withJson } from './advanced.js';
import { columnsOf } from './names.js';
import { sourcePicker } from './source.js';

/** Columns a client sort may allow; keys a client may write (server: MAX_SORTABLE, MAX_CLIENT_SORT_KEYS). */
const MAX_ALLOWED = 8;
const MAX_KEYS = 2;

/** @param {import('../widgets.js').WidgetArgs} a */
export function clientSortWidget(a) {
  const cols = () => (columnsOf(a.ctx ? a.ctx.tables() : [], a.ctx?.node()?.table) || [])
    .filter((c) => c.type !== 'password' && c.type !== 'json');
  return withJson({
    name: a.name, value: a.value, set: a.set, empty: '{}',
    canShow: (v) => {
      if (v === undefined) return null;
      if (!v || typeof v !== 'object' || Array.isArray(v) || !Array.isArray(v.allow)
        || Object.keys(v).some((k) => k !== 'value' && k !== 'allow')) return 'the value is not {value, allow}.';
      if (!a.ctx) return 'the node\u2019s table is not known.';
      return null;
    },
    build: (value, set) => {
      const on = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: value !== undefined, 'aria-label': 'Let the client choose the order' }));
      const body = h('div', { class: 'fm-sort' });
      /** @type {{value: any, allow: string[]}} */
      const cur = value === undefined
        ? { value: { $rhai: 'request.query.sort' }, allow: [] }
        : { value: value.value, allow: [...value.allow] };
      const write = () => set(on.checked ? { value: cur.value, allow: [...cur.allow] } : undefined);
      const draw = () => {
        if (!on.checked) { body.replaceChildren(); return; }
        const list = cols();
        const boxes = list.map((c) => {
          const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: cur.allow.includes(c.name), dataset: { sortColumn: c.name } }));
          box.disabled = !box.checked && cur.allow.length >= MAX_ALLOWED;
          box.addEventListener('change', () => {
            const picked = new Set(cur.allow.filter((x) => x !== c.name));
            if (box.checked) picked.add(c.name);
            cur.allow = list.map((x) => x.name).filter((n) => picked.has(n));
            write();
            draw();
          });
          return h('label', { class: 'fl-check fm-colbox' }, box, c.name);
        });
        body.replaceChildren(
          h('div', { class: 'fm-sub', text: 'Sort text from' }),
          sourcePicker({ label: `${a.name}: sort text`, value: cur.value, set: (v) => { cur.value = v ?? null; write(); }, ctx: a.ctx, matchName: 'sort' }),
          h('div', { class: 'fm-sub', text: `Columns the client may sort by (up to ${MAX_ALLOWED})` }),
          list.length ? h('div', { class: 'fm-collist' }, boxes) : h('p', { class: 'fl-hint', text: 'Pick a table first.' }),
          h('p', { class: 'fl-hint', text: `The client writes up to ${MAX_KEYS} of these, separated by commas, with - for descending (-created_at,title). Empty or absent: the order above. Anything else is a 400.` }),
        );
      };
      on.addEventListener('change', () => { write(); draw(); });
      draw();
      return h('div', {}, h('label', { class: 'fl-check' }, on, 'Let the client choose the order'), body);
    },
  });
}
