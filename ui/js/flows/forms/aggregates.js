// @ts-check
/**
 * The forms of `db.aggregate`: `"x-widget": "aggregates"` (one row per output: its name, the
 * function, and the column, offered by what the function takes) and `"x-widget":
 * "aggregate-order"` (rows of a key, a `group_by` column or an aggregate name, and a
 * direction). They write the flow format's `aggregates` object and `order_by` list
 * (FLOW-FORMAT.md, "db.aggregate"); the server checks the same rules at save.
 */
import { h } from '../../dom.js';
import { withJson } from './advanced.js';
import { columnsOf } from './names.js';

/** The functions as the form words them. */
export const FUNCTIONS = /** @type {Record<string, string>} */ ({
  count: 'count', sum: 'sum of', avg: 'average of', min: 'smallest', max: 'largest',
});

/**
 * Whether a function takes a column of this type (the server's `AggFn::fits`).
 * @param {string} fn @param {string} type
 */
export function fits(fn, type) {
  if (type === 'password') return false;
  if (fn === 'sum' || fn === 'avg') return type === 'integer' || type === 'decimal';
  if (fn === 'min' || fn === 'max') return type !== 'json';
  return fn === 'count';
}

const isObj = (/** @type {any} */ v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const NAME = /^[a-z][a-z0-9_]*$/;

/** @param {import('../widgets.js').WidgetArgs} a */
const tableCols = (a) => columnsOf(a.ctx ? a.ctx.tables() : [], a.ctx?.node()?.table);

/** @param {import('../widgets.js').WidgetArgs} a */
export function aggregatesWidget(a) {
  return withJson({
    name: a.name, value: a.value, set: a.set, empty: '{}',
    canShow: (v) => {
      if (v === undefined) return null;
      if (!isObj(v)) return 'the value is not a name → {fn, column} object.';
      for (const x of Object.values(v)) {
        if (!isObj(x) || !Object.hasOwn(FUNCTIONS, x.fn) || Object.keys(x).some((k) => k !== 'fn' && k !== 'column')
          || (x.column !== undefined && typeof x.column !== 'string')) return 'an aggregate has another shape than {fn, column}.';
      }
      return tableCols(a) ? null : 'the node\u2019s table is not known, so its columns cannot be listed.';
    },
    build: (value, set) => {
      const cols = tableCols(a) || [];
      /** @type {[string, any][]} */
      const rows = Object.entries(isObj(value) ? structuredClone(value) : {});
      const write = () => set(rows.length ? Object.fromEntries(rows) : undefined);
      const el = h('div', { class: 'fm-aggregates' });
      const draw = (/** @type {number} */ focusRow = -1) => {
        el.replaceChildren(...rows.map(([name, agg], i) => {
          const label = (/** @type {string} */ what) => `${a.name}: ${what} ${i + 1}`;
          const nameIn = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-agg-name', value: name, 'aria-label': label('name') }));
          nameIn.spellcheck = false;
          nameIn.addEventListener('input', () => {
            const to = nameIn.value.trim();
            const taken = rows.some(([n], j) => j !== i && n === to);
            nameIn.setCustomValidity(!NAME.test(to) ? 'lowercase letters, digits and _, starting with a letter' : taken ? `${to} is taken` : '');
            if (nameIn.validity.valid) { rows[i][0] = to; write(); }
          });
          const fn = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-agg-fn', 'aria-label': label('function') }));
          for (const [v, l] of Object.entries(FUNCTIONS)) fn.append(new Option(l, v));
          fn.value = agg.fn;
          const col = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-agg-col', 'aria-label': label('column') }));
          const fillColumns = () => {
            col.replaceChildren();
            if (agg.fn === 'count') col.append(new Option('(every row)', ''));
            for (const c of cols.filter((c) => fits(agg.fn, c.type))) col.append(new Option(c.name, c.name));
            if (agg.column !== undefined && ![...col.options].some((o) => o.value === agg.column)) {
              col.append(new Option(`${agg.column} (does not fit)`, agg.column));
            }
            col.value = agg.column ?? '';
          };
          fillColumns();
          fn.addEventListener('change', () => {
            agg.fn = fn.value;
            // A column the new function does not take is replaced by the first that fits.
            const ok = cols.filter((c) => fits(agg.fn, c.type));
            if (agg.column === undefined ? agg.fn !== 'count' : !ok.some((c) => c.name === agg.column)) {
              if (agg.fn === 'count' || !ok.length) delete agg.column; else agg.column = ok[0].name;
            }
            fillColumns();
            write();
          });
          col.addEventListener('change', () => {
            if (col.value === '') delete agg.column; else agg.column = col.value;
            write();
          });
          const rm = h('button', { type: 'button', class: 'fl-btn fm-remove', text: '✕', 'aria-label': `Remove aggregate ${name}`,
            onclick: () => { rows.splice(i, 1); write(); draw(); } });
          if (i === focusRow) queueMicrotask(() => nameIn.focus());
          return h('div', { class: 'fm-row fm-agg-row', dataset: { aggregate: name } }, nameIn, fn, col, rm);
        }),
        rows.length < 20 ? h('button', { type: 'button', class: 'fl-btn fm-add fm-add-agg', text: '+ Aggregate', onclick: () => {
          let n = rows.length ? `value_${rows.length + 1}` : 'count';
          while (rows.some(([x]) => x === n)) n = `${n}_1`;
          rows.push([n, { fn: 'count' }]); write(); draw(rows.length - 1);
        } }) : '',
        h('p', { class: 'fl-hint', text: 'Each row is one value of the result: its name, the function and the column (count without a column counts rows). Empty sets give 0 for counts and null for the others.' }));
      };
      draw();
      return el;
    },
  });
}

/** @param {import('../widgets.js').WidgetArgs} a */
export function aggregateOrderWidget(a) {
  /** The keys an order may name now: the node's group columns, then its aggregate names. */
  const keys = () => {
    const node = a.ctx?.node() || {};
    const groups = Array.isArray(node.group_by) ? node.group_by.filter((/** @type {any} */ g) => typeof g === 'string') : [];
    return [...groups, ...Object.keys(isObj(node.aggregates) ? node.aggregates : {})];
  };
  const grouped = () => Array.isArray(a.ctx?.node()?.group_by) && a.ctx?.node()?.group_by.length > 0;
  return withJson({
    name: a.name, value: a.value, set: a.set, empty: '[]',
    canShow: (v) => {
      if (v === undefined) return null;
      const ok = Array.isArray(v) && v.every((o) => isObj(o) && typeof o.key === 'string'
        && Object.keys(o).every((k) => k === 'key' || (k === 'desc' && typeof o.desc === 'boolean')));
      return ok ? null : 'the value is not a list of {key, desc}.';
    },
    build: (value, set) => {
      const el = h('div', { class: 'fm-orderby fm-agg-order' });
      /** @type {any[]} */
      const rows = Array.isArray(value) ? structuredClone(value) : [];
      const write = () => set(rows.length ? structuredClone(rows) : undefined);
      const draw = (/** @type {number} */ focusRow = -1) => {
        el.replaceChildren(...rows.map((r, i) => {
          const key = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-order-col', 'aria-label': `${a.name}: sort key ${i + 1}` }));
          // The keys follow the group columns and aggregate names as they are when it opens.
          const fill = () => {
            const list = keys();
            key.replaceChildren(...list.map((k) => new Option(k, k)));
            if (!list.includes(r.key)) key.append(new Option(`${r.key} (no such key)`, r.key));
            key.value = r.key;
          };
          fill();
          key.addEventListener('focus', fill);
          key.addEventListener('change', () => { r.key = key.value; write(); });
          const dir = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-order-dir', 'aria-label': `${a.name}: direction ${i + 1}` },
            new Option('ascending', 'asc'), new Option('descending', 'desc')));
          dir.value = r.desc ? 'desc' : 'asc';
          dir.addEventListener('change', () => { if (dir.value === 'desc') r.desc = true; else if ('desc' in r) r.desc = false; write(); });
          const rm = h('button', { type: 'button', class: 'fl-btn fm-remove', text: '✕', 'aria-label': `Remove sort by ${r.key}`, onclick: () => { rows.splice(i, 1); write(); draw(); } });
          if (i === focusRow) queueMicrotask(() => key.focus());
          return h('div', { class: 'fm-row fm-order-row' }, key, dir, rm);
        }),
        rows.length < 8 ? h('button', { type: 'button', class: 'fl-btn fm-add', text: '+ Sort key', onclick: () => {
          const list = keys();
          if (!list.length) return;
          rows.push({ key: list[0], desc: false }); write(); draw(rows.length - 1);
        } }) : '',
        h('p', { class: 'fl-hint', text: grouped() ? 'Groups are then ordered by the group columns.' : 'Orders groups: needs group_by columns.' }));
      };
      draw();
      return el;
    },
  });
}
