// @ts-check
/**
 * Column choices of a node's table: `"x-widget": "column-list"` (a checkbox per column, for
 * `select`, `include` and `group_by`; `"x-column-types"` limits the columns offered by type,
 * `"x-column-exclude"` leaves types out) and
 * `"x-widget": "order-by"` (rows of column + ascending/descending, for `order_by`).
 */
import { h } from '../../dom.js';
import { withJson } from './advanced.js';
import { columnsOf } from './names.js';

/** @param {import('../widgets.js').WidgetArgs} a */
const tableCols = (a) => columnsOf(a.ctx ? a.ctx.tables() : [], a.ctx?.node()?.table);

/** @param {import('../widgets.js').WidgetArgs} a */
export function columnListWidget(a) {
  const types = Array.isArray(a.schema['x-column-types']) ? a.schema['x-column-types'] : null;
  const except = Array.isArray(a.schema['x-column-exclude']) ? a.schema['x-column-exclude'] : [];
  const cols = () => (tableCols(a) || []).filter((c) => c.type !== 'password' && (!types || types.includes(c.type)) && !except.includes(c.type));
  return withJson({
    name: a.name, value: a.value, set: a.set, empty: '[]',
    canShow: (v) => {
      if (v === undefined) return null;
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) return 'the value is not a list of column names.';
      if (!tableCols(a)) return 'the node\u2019s table is not known, so its columns cannot be listed.';
      const extra = v.filter((x) => !cols().some((c) => c.name === x));
      return extra.length ? `${extra.join(', ')} cannot be picked here.` : null;
    },
    build: (value, set) => {
      const list = cols();
      if (!list.length) return h('p', { class: 'fl-hint', text: tableCols(a) ? 'The table has no columns to pick here.' : 'Pick a table first.' });
      let cur = Array.isArray(value) ? [...value] : [];
      const boxes = list.map((c) => {
        const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: cur.includes(c.name), dataset: { column: c.name } }));
        box.addEventListener('change', () => {
          // Keep the table's column order, so ticking in any order writes the same list.
          const on = new Set(cur.filter((x) => x !== c.name));
          if (box.checked) on.add(c.name);
          cur = list.map((x) => x.name).filter((n) => on.has(n));
          set(cur.length ? cur : undefined);
        });
        return h('label', { class: 'fl-check fm-colbox' }, box, c.name);
      });
      return h('div', { class: 'fm-collist' }, boxes,
        h('p', { class: 'fl-hint', text: [types ? `Only ${types.join(', ')} columns are offered.` : '', except.length ? `${except.join(', ')} columns cannot be picked here.` : '', a.required ? 'Tick at least one.' : 'None ticked: the default.'].filter(Boolean).join(' ') }));
    },
  });
}

/** @param {import('../widgets.js').WidgetArgs} a */
export function orderByWidget(a) {
  const cols = () => (tableCols(a) || []).filter((c) => c.type !== 'password' && c.type !== 'json');
  return withJson({
    name: a.name, value: a.value, set: a.set, empty: '[]',
    canShow: (v) => {
      if (v === undefined) return null;
      const ok = Array.isArray(v) && v.every((o) => o && typeof o === 'object' && typeof o.column === 'string'
        && Object.keys(o).every((k) => k === 'column' || (k === 'desc' && typeof o.desc === 'boolean')));
      if (!ok) return 'the value is not a list of {column, desc}.';
      return tableCols(a) ? null : 'the node\u2019s table is not known, so its columns cannot be listed.';
    },
    build: (value, set) => {
      const list = cols();
      const el = h('div', { class: 'fm-orderby' });
      /** @type {any[]} */
      const rows = Array.isArray(value) ? structuredClone(value) : [];
      const write = () => set(rows.length ? structuredClone(rows) : undefined);
      const draw = (/** @type {number} */ focusRow = -1) => {
        el.replaceChildren(...rows.map((r, i) => {
          const col = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-order-col', 'aria-label': `${a.name}: sort column ${i + 1}` }));
          for (const c of list) col.append(new Option(c.name, c.name));
          if (!list.some((c) => c.name === r.column)) col.append(new Option(`${r.column} (not sortable)`, r.column));
          col.value = r.column;
          col.addEventListener('change', () => { r.column = col.value; write(); });
          const dir = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-order-dir', 'aria-label': `${a.name}: direction ${i + 1}` },
            new Option('ascending', 'asc'), new Option('descending', 'desc')));
          dir.value = r.desc ? 'desc' : 'asc';
          dir.addEventListener('change', () => { if (dir.value === 'desc') r.desc = true; else if ('desc' in r) r.desc = false; write(); });
          const rm = h('button', { type: 'button', class: 'fl-btn fm-remove', text: '✕', 'aria-label': `Remove sort by ${r.column}`, onclick: () => { rows.splice(i, 1); write(); draw(); } });
          if (i === focusRow) queueMicrotask(() => col.focus());
          return h('div', { class: 'fm-row fm-order-row' }, col, dir, rm);
        }),
        rows.length < 8 && list.length ? h('button', { type: 'button', class: 'fl-btn fm-add', text: '+ Sort column', onclick: () => {
          rows.push({ column: list[0].name, desc: false }); write(); draw(rows.length - 1);
        } }) : '',
        h('p', { class: 'fl-hint', text: 'Rows are then ordered by id.' }));
      };
      draw();
      return el;
    },
  });
}
