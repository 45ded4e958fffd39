// @ts-check
/**
 * The data grid's filter bar: several conditions (field, an operator that fits the field's
 * type, a value), combined with "all" (and) or "any" (or). **Apply** (or Enter in a value)
 * sends them to `GridState.setFilter`; **Clear** drops them. Values are parsed per type by
 * `values.js`; a value that does not fit is reported and nothing is sent.
 */
import { h, replace } from '../dom.js';
import { errorBox } from '../ui.js';
import { parseCell } from './values.js';

const TEXT_OPS = [['contains', 'contains'], ['eq', '='], ['ne', '≠'], ['starts_with', 'starts with'], ['is_null', 'is empty'], ['not_null', 'is not empty']];
const CMP_OPS = [['eq', '='], ['ne', '≠'], ['lt', '<'], ['le', '≤'], ['gt', '>'], ['ge', '≥'], ['is_null', 'is empty'], ['not_null', 'is not empty']];
const EQ_OPS = [['eq', '='], ['ne', '≠'], ['is_null', 'is empty'], ['not_null', 'is not empty']];

/** The operators that fit a field type. @param {string} type */
function opsFor(type) {
  if (['text', 'email', 'enum'].includes(type)) return TEXT_OPS;
  if (['boolean', 'reference', 'uuid'].includes(type)) return EQ_OPS;
  return CMP_OPS;
}

/**
 * The filter bar. `problems` shows what is wrong with a value.
 * @param {import('./state.js').GridState} state @param {HTMLElement} problems
 * @returns {HTMLElement}
 */
export function filterBar(state, problems) {
  const { types, columns, def } = state;
  const fields = columns.filter((c) => types[c] !== 'json');
  const rowsEl = h('div', { class: 'filter-rows' });
  const join = /** @type {HTMLSelectElement} */ (h('select', { id: 'filter-join', 'aria-label': 'Rows must match', class: 'filter-join' },
    h('option', { value: 'and', text: 'all conditions' }),
    h('option', { value: 'or', text: 'any condition' })));
  join.value = state.join;
  const joinWrap = h('label', { class: 'filter-join-label' }, 'Match ', join);
  /** @type {{field: HTMLSelectElement, op: HTMLSelectElement, value: HTMLInputElement, el: HTMLElement}[]} */
  let conds = [];

  const renumber = () => {
    conds.forEach((c, i) => {
      const n = i + 1;
      c.field.setAttribute('aria-label', n === 1 ? 'Filter field' : `Field of condition ${n}`);
      c.op.setAttribute('aria-label', n === 1 ? 'Filter operator' : `Operator of condition ${n}`);
      c.value.setAttribute('aria-label', n === 1 ? 'Filter value' : `Value of condition ${n}`);
      // The first condition keeps the ids other screens and tests know.
      c.field.id = n === 1 ? 'filter-field' : `filter-field-${n}`;
      c.op.id = n === 1 ? 'filter-op' : `filter-op-${n}`;
      c.value.id = n === 1 ? 'filter-value' : `filter-value-${n}`;
      const rm = /** @type {HTMLElement} */ (c.el.querySelector('.filter-remove'));
      rm.setAttribute('aria-label', `Remove condition ${n}`);
      rm.hidden = conds.length === 1;
    });
    joinWrap.hidden = conds.length < 2;
  };

  /** Adds a condition row. @param {any} [init] a condition to show */
  const addRow = (init) => {
    const field = /** @type {HTMLSelectElement} */ (h('select', { class: 'filter-field' }, fields.map((c) => h('option', { value: c, text: c }))));
    const op = /** @type {HTMLSelectElement} */ (h('select', { class: 'filter-op' }));
    const value = /** @type {HTMLInputElement} */ (h('input', { type: 'search', class: 'filter-value', placeholder: 'value', autocomplete: 'off' }));
    const setOps = () => {
      const keep = op.value;
      replace(op, opsFor(types[field.value]).map(([v, l]) => h('option', { value: v, text: l })));
      if ([...op.options].some((o) => o.value === keep)) op.value = keep;
      value.hidden = op.value === 'is_null' || op.value === 'not_null';
    };
    field.addEventListener('change', setOps);
    op.addEventListener('change', () => { value.hidden = op.value === 'is_null' || op.value === 'not_null'; });
    const first = def.fields.find((/** @type {any} */ f) => fields.includes(f.name));
    field.value = init?.field || (first ? first.name : fields[0]);
    setOps();
    if (init) {
      op.value = init.op === 'is_null' ? (init.value ? 'is_null' : 'not_null') : init.op;
      value.hidden = op.value === 'is_null' || op.value === 'not_null';
      if (init.op !== 'is_null') value.value = typeof init.value === 'object' ? JSON.stringify(init.value) : String(init.value);
    }
    const row = { field, op, value, el: h('div', { class: 'filter-row' }) };
    const remove = h('button', { type: 'button', class: 'btn-icon filter-remove', title: 'Remove condition', onclick: () => {
      conds = conds.filter((c) => c !== row);
      row.el.remove();
      renumber();
      conds[0]?.field.focus();
    } }, '×');
    replace(row.el, field, op, value, remove);
    conds.push(row);
    rowsEl.append(row.el);
    renumber();
    return row;
  };

  const form = h('form', { class: 'filter-bar', role: 'search', 'aria-label': 'Filter rows', novalidate: true },
    rowsEl,
    h('div', { class: 'filter-actions' },
      h('button', { type: 'button', class: 'btn btn-sm btn-ghost', id: 'add-condition', onclick: () => addRow().field.focus() }, '+ Condition'),
      joinWrap,
      h('button', { type: 'submit', class: 'btn btn-sm', id: 'apply-filter' }, 'Filter'),
      h('button', { type: 'button', class: 'btn btn-sm btn-ghost', id: 'clear-filter', onclick: () => {
        for (const c of conds) c.el.remove();
        conds = [];
        addRow();
        replace(problems);
        state.setFilter([]);
      } }, 'Clear')));

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    /** @type {import('./state.js').Condition[]} */
    const out = [];
    const errs = [];
    for (const c of conds) {
      const f = c.field.value;
      const o = c.op.value;
      if (o === 'is_null' || o === 'not_null') { out.push({ field: f, op: 'is_null', value: o === 'is_null' }); continue; }
      // An empty value is no condition (text: an empty `contains` would match every row).
      if (c.value.value.trim() === '') continue;
      const v = parseCell(types[f], c.value.value);
      if (v.error) errs.push(`${f}: ${v.error}`);
      else out.push({ field: f, op: o, value: v.value });
    }
    if (errs.length) { replace(problems, errorBox({ message: errs.join('; ') })); return; }
    replace(problems);
    state.setFilter(out, /** @type {'and' | 'or'} */ (join.value));
  });

  if (state.conditions.length) for (const c of state.conditions) addRow(c);
  else addRow();
  return form;
}
