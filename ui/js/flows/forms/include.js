// @ts-check
/**
 * The include form (`"x-widget": "include"`, `include` of `db.query` and `db.get`): a checkbox
 * per reference field of the node's table (the referenced row replaces the id), each with the
 * referenced row's own reference fields to include; and rows of "Rows that reference this
 * row": a table, its field that points here, the key they go under, an order and a limit, each
 * with the listed rows' reference fields. Deeper includes are edited as JSON.
 */
import { h } from '../../dom.js';
import { withJson } from './advanced.js';
import { columnsOf } from './names.js';

const MAX_LIMIT = 100;

/** @param {any} v */
const isObj = (v) => !!v && typeof v === 'object' && !Array.isArray(v);

/** Nested includes the form shows: a list of reference field names. @param {any} v */
const plainList = (v) => v === undefined || (Array.isArray(v) && v.every((x) => typeof x === 'string'));

/** @param {import('../widgets.js').WidgetArgs} a */
export function includeWidget(a) {
  const tables = () => (a.ctx ? a.ctx.tables() : []);
  const refs = (/** @type {string | undefined} */ table) => (columnsOf(tables(), table) || []).filter((c) => c.type === 'reference');
  return withJson({
    name: a.name, value: a.value, set: a.set, empty: '[]',
    canShow: (v) => {
      if (v === undefined) return null;
      if (!Array.isArray(v)) return 'the value is not a list.';
      if (!a.ctx || !columnsOf(tables(), a.ctx.node()?.table)) return 'the node\u2019s table is not known, so its references cannot be listed.';
      for (const it of v) {
        if (typeof it === 'string') continue;
        if (!isObj(it)) return 'an include is neither a field name nor an object.';
        if (!plainList(it.include)) return 'an include nests deeper than the form shows.';
        if (it.table === undefined && typeof it.field !== 'string') return 'an include has no field.';
      }
      return null;
    },
    build: (value, set) => {
      const here = a.ctx?.node()?.table;
      /** @type {any[]} */
      const items = Array.isArray(value) ? structuredClone(value) : [];
      const el = h('div', { class: 'fm-include' });
      const write = () => set(items.length ? structuredClone(items) : undefined);
      const fieldOf = (/** @type {any} */ it) => (typeof it === 'string' ? it : it.table === undefined ? it.field : null);
      /** Checkboxes of `table`'s reference fields, ticking names into `list`. */
      const withBoxes = (/** @type {string | undefined} */ table, /** @type {string[]} */ list, /** @type {(l: string[]) => void} */ put, /** @type {string} */ label) => {
        const r = refs(table);
        if (!r.length) return '';
        return h('div', { class: 'fm-inc-with' }, h('span', { class: 'fl-hint', text: 'with ' }), r.map((c) => {
          const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: list.includes(c.name), 'aria-label': `${label}: include ${c.name}`, dataset: { with: c.name } }));
          box.addEventListener('change', () => {
            const on = new Set(list.filter((x) => x !== c.name));
            if (box.checked) on.add(c.name);
            put(r.map((x) => x.name).filter((n) => on.has(n)));
          });
          return h('label', { class: 'fl-check fm-colbox' }, box, c.name);
        }));
      };
      const draw = () => {
        const own = refs(here);
        const one = own.map((c) => {
          const at = items.findIndex((it) => fieldOf(it) === c.name);
          const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: at >= 0, dataset: { column: c.name } }));
          box.addEventListener('change', () => {
            if (box.checked) items.push(c.name); else items.splice(items.findIndex((it) => fieldOf(it) === c.name), 1);
            write(); draw();
          });
          const nested = at >= 0 ? withBoxes(c.table, typeof items[at] === 'string' ? [] : items[at].include || [], (l) => {
            items[at] = l.length ? { field: c.name, include: l } : c.name;
            write(); draw();
          }, c.name) : '';
          return h('div', { class: 'fm-inc-one' }, h('label', { class: 'fl-check fm-colbox' }, box, c.name), nested);
        });
        // Tables with a reference field that points at the node's table.
        const referencing = tables().filter((t) => (t.fields || []).some((f) => f.type === 'reference' && f.table === here));
        const many = items.map((it, i) => {
          if (!isObj(it) || it.table === undefined) return '';
          const row = h('div', { class: 'fm-row fm-inc-many', dataset: { index: String(i) } });
          const tsel = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-inc-table', 'aria-label': `rows of table ${i + 1}` }));
          for (const t of referencing) tsel.append(new Option(t.name, t.name));
          if (!referencing.some((t) => t.name === it.table)) tsel.append(new Option(`${it.table} (no reference here)`, it.table));
          tsel.value = it.table;
          const bys = (refs(it.table)).filter((c) => c.table === here);
          const bsel = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-inc-by', 'aria-label': `field of ${it.table} that points here` }));
          for (const c of bys) bsel.append(new Option(c.name, c.name));
          if (!bys.some((c) => c.name === it.by)) bsel.append(new Option(it.by ?? '', it.by ?? ''));
          bsel.value = it.by ?? '';
          tsel.addEventListener('change', () => {
            const first = refs(tsel.value).find((c) => c.table === here);
            items[i] = { table: tsel.value, by: first ? first.name : '' };
            write(); draw();
          });
          bsel.addEventListener('change', () => { it.by = bsel.value; write(); });
          const as = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-inc-as', placeholder: it.table, value: it.as ?? '', 'aria-label': `key of the rows of ${it.table}` }));
          as.addEventListener('input', () => { if (as.value) it.as = as.value; else delete it.as; write(); });
          const cols = (columnsOf(tables(), it.table) || []).filter((c) => c.type !== 'password' && c.type !== 'json');
          const ord = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-inc-order', 'aria-label': `order of the rows of ${it.table}` }, new Option('by id', '')));
          for (const c of cols) if (c.name !== 'id') { ord.append(new Option(c.name, c.name)); ord.append(new Option(`${c.name} descending`, `-${c.name}`)); }
          const o = Array.isArray(it.order_by) && it.order_by[0];
          ord.value = o ? `${o.desc ? '-' : ''}${o.column}` : '';
          ord.addEventListener('change', () => {
            if (!ord.value) delete it.order_by;
            else it.order_by = [ord.value.startsWith('-') ? { column: ord.value.slice(1), desc: true } : { column: ord.value }];
            write();
          });
          const lim = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-inc-limit', type: 'number', min: '1', max: String(MAX_LIMIT), step: '1', placeholder: '20', value: it.limit ?? '', 'aria-label': `most rows of ${it.table}` }));
          lim.addEventListener('input', () => { const n = Number(lim.value); if (lim.value && Number.isInteger(n)) it.limit = n; else delete it.limit; write(); });
          const rm = h('button', { type: 'button', class: 'fl-btn fm-remove', text: '✕', 'aria-label': `Remove the rows of ${it.table}`, onclick: () => { items.splice(i, 1); write(); draw(); } });
          row.append(h('span', { class: 'fl-hint', text: 'rows of' }), tsel, h('span', { class: 'fl-hint', text: 'by' }), bsel, h('span', { class: 'fl-hint', text: 'as' }), as, ord, lim, rm,
            withBoxes(it.table, it.include || [], (l) => { if (l.length) it.include = l; else delete it.include; write(); draw(); }, it.table));
          return row;
        });
        el.replaceChildren(
          own.length ? h('div', { class: 'fm-collist' }, one) : h('p', { class: 'fl-hint', text: here ? 'The table has no reference fields.' : 'Pick a table first.' }),
          ...many,
          referencing.length ? h('button', { type: 'button', class: 'fl-btn fm-add fm-inc-add', text: '+ Rows that reference this row', onclick: () => {
            const t = referencing[0];
            const by = (t.fields || []).find((f) => f.type === 'reference' && f.table === here);
            items.push({ table: t.name, by: by ? by.name : '' }); write(); draw();
          } }) : '',
          h('p', { class: 'fl-hint', text: 'Read in the node\u2019s one statement. At most 8 includes in all.' }),
        );
      };
      draw();
      return el;
    },
  });
}
