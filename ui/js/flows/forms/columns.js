// @ts-check
/**
 * The column mapping grid (`"x-widget": "columns"`): one row per column of the node's table
 * (its `table` property), each picking where the column's value comes from (not set, a request
 * field, a variable, a typed literal or an expression). Writes the same `column -> value` object
 * the flow format takes. Sluice's own columns (`id`, `created_at`, `updated_at`) are left out.
 */
import { h } from '../../dom.js';
import { withJson } from './advanced.js';
import { columnsOf, requestFields } from './names.js';
import { sourcePicker } from './source.js';
import { WIDGETS } from '../widgets.js';

/** @param {import('../widgets.js').WidgetArgs} a */
export function columnsWidget(a) {
  const ctx = a.ctx;
  if (!ctx) return WIDGETS.json(a);
  const cols = () => (columnsOf(ctx.tables(), ctx.node()?.[tableProp(a.schema)]) || []).filter((c) => !c.system);
  return withJson({
    name: a.name, value: a.value, set: a.set, empty: '{}',
    canShow: (v) => {
      if (v === undefined) return null;
      if (!v || typeof v !== 'object' || Array.isArray(v)) return 'the value is not a column → value object.';
      const table = ctx.node()?.[tableProp(a.schema)];
      const known = columnsOf(ctx.tables(), table);
      if (!known) return Object.keys(v).length ? `the table ${table ? `"${table}"` : ''} is not known, so its columns cannot be listed.` : null;
      const extra = Object.keys(v).filter((k) => !cols().some((c) => c.name === k));
      return extra.length ? `${extra.join(', ')} ${extra.length === 1 ? 'is not a column' : 'are not columns'} of ${table}.` : null;
    },
    build: (value, set) => grid(a, cols(), value, set),
  });
}

/** The property naming the node's table (`x-table`, default `table`). @param {any} schema */
const tableProp = (schema) => (typeof schema['x-table'] === 'string' ? schema['x-table'] : 'table');

/**
 * @param {import('../widgets.js').WidgetArgs} a @param {import('./names.js').Column[]} cols
 * @param {any} value @param {(v: any) => void} set
 */
function grid(a, cols, value, set) {
  if (!cols.length) return h('p', { class: 'fl-hint', text: a.ctx?.node()?.[tableProp(a.schema)] ? 'The table has no columns to set.' : 'Pick a table first; its columns are listed here.' });
  const warnRequired = a.schema['x-required'] !== false;
  let cur = value && typeof value === 'object' ? { ...value } : {};
  const rows = cols.map((c) => {
    const warn = h('div', { class: 'fm-warn', role: 'status' });
    const check = (/** @type {any} */ v) => {
      const missing = warnRequired && c.required && !c.hasDefault && v === undefined;
      warn.textContent = missing ? `${c.name} is required and has no default: give it a value.` : '';
    };
    check(cur[c.name]);
    const picker = sourcePicker({
      label: c.name, value: cur[c.name], ctx: a.ctx, column: c, allowUnset: true,
      set: (v) => {
        const next = { ...cur };
        if (v === undefined) delete next[c.name]; else next[c.name] = v;
        cur = next;
        check(v);
        set(Object.keys(cur).length || a.required ? cur : undefined);
      },
    });
    const type = c.type === 'enum' ? `enum: ${(c.values || []).join(', ')}` : c.type === 'reference' ? `reference → ${c.table}` : c.type;
    return h('div', { class: 'fm-row fm-col-row', dataset: { column: c.name } },
      h('div', { class: 'fm-col-name' },
        h('span', { class: 'fm-name', text: c.name }),
        c.required ? h('span', { class: 'fm-req', title: 'required', text: ' *' }) : '',
        h('span', { class: 'fm-type', text: ` ${type}${c.hasDefault ? ' · has default' : ''}` })),
      picker, warn);
  });
  // One click maps every unset column to the declared request field of the same name.
  const matches = () => cols.filter((c) => cur[c.name] === undefined && a.ctx && requestFields(a.ctx.doc()).some((f) => f.name === c.name));
  const auto = matches().length ? h('button', { type: 'button', class: 'fl-btn fm-add fm-map-request', text: `Map ${matches().length} matching request field${matches().length === 1 ? '' : 's'}`,
    title: 'Each column not set yet takes the request field with its name', onclick: () => {
      const fields = a.ctx ? requestFields(a.ctx.doc()) : [];
      const next = { ...cur };
      for (const c of matches()) {
        const f = fields.find((x) => x.name === c.name && x.part === 'body') || /** @type {any} */ (fields.find((x) => x.name === c.name));
        next[c.name] = { $rhai: f.path };
      }
      set(next);
      a.ctx?.rerender(`[data-prop="${a.name}"] .fm-col-row select`);
    } }) : '';
  return h('div', { class: 'fm-grid' }, auto, rows);
}
