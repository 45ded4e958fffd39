// @ts-check
/**
 * The data grid's rendering: the toolbar with the filter, the table (sortable heads, ticks,
 * cells), the footer with paging. Renders from `GridState` on its events and calls its
 * operations; editing (inline cells, dialogs) is `edit.js`'s.
 */
import { download } from '../api.js';
import { h, icon, replace } from '../dom.js';
import { errorBox, toast } from '../ui.js';
import { deleteRow, deleteSelected, editCell, importCsv, insertRow } from './edit.js';
import { PAGE, SYSTEM } from './state.js';
import { display, parseCell, shown } from './values.js';

const TEXT_OPS = [['contains', 'contains'], ['eq', '='], ['ne', '≠'], ['starts_with', 'starts with'], ['is_null', 'is empty']];
const CMP_OPS = [['eq', '='], ['ne', '≠'], ['lt', '<'], ['le', '≤'], ['gt', '>'], ['ge', '≥'], ['is_null', 'is empty']];

/**
 * The whole grid, drawn into `el`; it redraws itself when the state changes.
 * @param {HTMLElement} el @param {import('./state.js').GridState} state
 */
export function gridView(el, state) {
  const problems = h('div');
  const tableEl = h('table', { class: 'data', id: 'rows', 'aria-label': `Rows of ${state.name}` });
  const status = h('span', { 'aria-live': 'polite' });
  const prev = h('button', { type: 'button', class: 'btn btn-sm', onclick: () => state.page(-1) }, '← Previous');
  const next = h('button', { type: 'button', class: 'btn btn-sm', id: 'next-page', onclick: () => state.page(1) }, 'Next →');
  const deleteBtn = h('button', { type: 'button', class: 'btn btn-sm btn-danger', id: 'delete-selected', hidden: true, onclick: () => deleteSelected(state) });

  replace(el, h('section', { class: 'panel' },
    toolbar(state, problems, deleteBtn),
    h('div', null, problems),
    h('div', { class: 'table-wrap' }, tableEl),
    h('div', { class: 'grid-footer' }, status, h('div', { class: 'page-actions' }, prev, next))));

  const syncSelection = () => {
    deleteBtn.hidden = state.selected.size === 0;
    deleteBtn.textContent = `Delete ${state.selected.size} selected`;
  };
  state.on('selection', syncSelection);
  state.on('rows', () => {
    if (state.error) replace(problems, errorBox(state.error)); else replace(problems);
    syncSelection();
    replace(tableEl, h('thead', null, headRow(state, tableEl)), h('tbody', null, bodyRows(state)));
    const before = state.stack.length * PAGE;
    status.textContent = `${before + (state.rows.length ? 1 : 0)}–${before + state.rows.length} of ${state.total} row${state.total === 1 ? '' : 's'}`;
    if (state.stack.length) prev.removeAttribute('disabled'); else prev.setAttribute('disabled', '');
    if (state.next) next.removeAttribute('disabled'); else next.setAttribute('disabled', '');
  });
}

/**
 * The filter (one condition) and the table's actions.
 * @param {import('./state.js').GridState} state @param {HTMLElement} problems @param {HTMLElement} deleteBtn
 */
function toolbar(state, problems, deleteBtn) {
  const { types, columns, def, name } = state;
  const fField = /** @type {HTMLSelectElement} */ (h('select', { 'aria-label': 'Filter field', id: 'filter-field' }, columns.filter((c) => types[c] !== 'json').map((c) => h('option', { value: c, text: c }))));
  const fOp = /** @type {HTMLSelectElement} */ (h('select', { 'aria-label': 'Filter operator', id: 'filter-op' }));
  const fValue = /** @type {HTMLInputElement} */ (h('input', { type: 'search', 'aria-label': 'Filter value', id: 'filter-value', placeholder: 'value' }));
  const setOps = () => {
    const ops = ['text', 'email', 'enum'].includes(types[fField.value]) ? TEXT_OPS : CMP_OPS;
    replace(fOp, ops.map(([v, l]) => h('option', { value: v, text: l })));
  };
  fField.addEventListener('change', setOps);
  if (columns.includes(def.fields[0]?.name)) fField.value = def.fields[0].name;
  setOps();
  const form = h('form', { class: 'grid-toolbar', role: 'search', 'aria-label': 'Filter rows' },
    fField, fOp, fValue,
    h('button', { type: 'submit', class: 'btn btn-sm' }, 'Filter'),
    h('button', { type: 'button', class: 'btn btn-sm btn-ghost', onclick: () => { fValue.value = ''; state.setFilter(null); } }, 'Clear'),
    h('span', { class: 'spacer' }),
    deleteBtn,
    h('button', { type: 'button', class: 'btn btn-sm', id: 'import-csv', onclick: () => importCsv(state) }, icon('upload'), 'Import CSV'),
    h('button', { type: 'button', class: 'btn btn-sm', id: 'export-csv', onclick: () => download(`${state.path}/export`, `${name}.csv`).catch((e) => toast(e.message, 'error')) }, icon('download'), 'Export CSV'),
    h('button', { type: 'button', class: 'btn btn-sm btn-primary', id: 'add-row', onclick: () => insertRow(state) }, icon('plus'), 'Add row'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = fField.value;
    const op = fOp.value;
    if (op === 'is_null') { state.setFilter({ field: f, op, value: fValue.value.trim() !== 'false' }); return; }
    const v = parseCell(types[f], fValue.value);
    if (v.error) { replace(problems, errorBox({ message: `${f}: ${v.error}` })); return; }
    state.setFilter({ field: f, op, value: v.value });
  });
  return form;
}

/** The head row: tick-all, one sortable head per column, actions. @param {import('./state.js').GridState} state @param {HTMLElement} tableEl */
function headRow(state, tableEl) {
  const sortCol = state.sort.replace(/^-/, '');
  const desc = state.sort.startsWith('-');
  const all = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', 'aria-label': 'Select all rows on this page', id: 'select-all' }));
  all.addEventListener('change', () => {
    const boxes = /** @type {HTMLInputElement[]} */ ([...tableEl.querySelectorAll('tbody input[type=checkbox]')]);
    for (const box of boxes) box.checked = all.checked;
    state.tick(boxes.map((b) => /** @type {string} */ (b.dataset.id)), all.checked);
  });
  return h('tr', null, h('th', { scope: 'col', class: 'pick' }, all), state.columns.map((c) => {
    const sortable = state.types[c] !== 'json';
    const ariaSort = sortCol === c ? (desc ? 'descending' : 'ascending') : 'none';
    return h('th', { scope: 'col', 'aria-sort': ariaSort },
      sortable
        ? h('button', { type: 'button', class: 'sort', onclick: () => state.toggleSort(c), 'aria-label': `Sort by ${c}` }, c, sortCol === c ? (desc ? ' ↓' : ' ↑') : '')
        : c,
      h('span', { class: 'type', text: state.types[c] }));
  }), h('th', { scope: 'col' }, h('span', { class: 'sr-only', text: 'Actions' })));
}

/** One row per record, or a line saying there are none. @param {import('./state.js').GridState} state */
function bodyRows(state) {
  if (!state.rows.length) {
    return h('tr', null, h('td', { colspan: String(state.columns.length + 2), class: 'null', text: state.filter ? 'No rows match the filter.' : 'No rows yet. Add one or import a CSV.' }));
  }
  return state.rows.map((r) => h('tr', { dataset: { id: String(r.id) } },
    h('td', { class: 'pick' }, tick(state, r)),
    state.columns.map((c) => cell(state, r, c)),
    h('td', { class: 'actions' }, h('button', { type: 'button', class: 'btn-icon', 'aria-label': `Delete row ${r.id}`, onclick: () => deleteRow(state, r) }, icon('trash')))));
}

/** @param {import('./state.js').GridState} state @param {any} r */
function tick(state, r) {
  const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', 'aria-label': `Select row ${r.id}`, dataset: { id: String(r.id) } }));
  box.addEventListener('change', () => state.tick([String(r.id)], box.checked));
  return box;
}

/**
 * One cell; editable ones open the inline editor on double-click, Enter or F2.
 * @param {import('./state.js').GridState} state @param {any} r @param {string} c
 * @returns {HTMLElement}
 */
export function cell(state, r, c) {
  const v = r[c];
  const t = state.types[c];
  const editable = state.editable.has(c);
  const td = h('td', {
    class: [v === null || v === undefined ? 'null' : '', ['integer', 'decimal'].includes(t) ? 'num' : '', SYSTEM.includes(c) ? 'sys' : '', editable ? 'editable' : ''].filter(Boolean).join(' '),
    dataset: { col: c },
    title: display(v),
    tabindex: editable ? '0' : null,
  }, v === null || v === undefined ? 'NULL' : shown(v, t));
  if (editable) {
    const open = () => editCell(state, td, r, c, cell);
    td.addEventListener('dblclick', open);
    td.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === 'F2') { ev.preventDefault(); open(); } });
  }
  return td;
}
