// @ts-check
/**
 * The data grid's rendering: the toolbar (filter bar, sort summary, actions), the table (sticky
 * sortable heads, ticks, cells, reference labels), the footer with paging. Renders from
 * `GridState` on its events and calls its operations; editing (inline cells, dialogs) is
 * `edit.js`'s, the filter bar `filters.js`'s, keyboard navigation `keys.js`'s.
 */
import { download } from '../api.js';
import { h, icon, replace } from '../dom.js';
import { errorBox, toast } from '../ui.js';
import { deleteRow, deleteSelected, editCell, importCsv, insertRow } from './edit.js';
import { filterBar } from './filters.js';
import { gridKeys } from './keys.js';
import { PAGE, SYSTEM } from './state.js';
import { display, shown } from './values.js';

/**
 * The whole grid, drawn into `el`; it redraws itself when the state changes.
 * @param {HTMLElement} el @param {import('./state.js').GridState} state
 */
export function gridView(el, state) {
  const problems = h('div');
  const tableEl = /** @type {HTMLTableElement} */ (h('table', { class: 'data', id: 'rows', role: 'grid', 'aria-label': `Rows of ${state.name}` }));
  const keys = gridKeys(tableEl);
  const status = h('span', { 'aria-live': 'polite' });
  const sortInfo = h('div', { class: 'sort-info', id: 'sort-info' });
  const prev = h('button', { type: 'button', class: 'btn btn-sm', onclick: () => state.page(-1) }, '← Previous');
  const next = h('button', { type: 'button', class: 'btn btn-sm', id: 'next-page', onclick: () => state.page(1) }, 'Next →');
  const deleteBtn = h('button', { type: 'button', class: 'btn btn-sm btn-danger', id: 'delete-selected', hidden: true, onclick: () => deleteSelected(state) });

  replace(el, h('section', { class: 'panel' },
    toolbar(state, deleteBtn),
    filterBar(state, problems),
    sortInfo,
    h('div', null, problems),
    h('div', { class: 'table-wrap grid-scroll', id: 'grid-scroll' }, tableEl),
    h('div', { class: 'grid-footer' }, status, h('div', { class: 'page-actions' }, prev, next))));

  const syncSelection = () => {
    deleteBtn.hidden = state.selected.size === 0;
    deleteBtn.textContent = `Delete ${state.selected.size} selected`;
  };
  state.on('selection', syncSelection);
  state.on('cells', () => keys.sync(false));
  state.on('focus', () => keys.sync(true));
  state.on('rows', () => {
    const hadFocus = tableEl.contains(document.activeElement);
    if (state.error) replace(problems, errorBox(state.error)); else replace(problems);
    syncSelection();
    replace(tableEl, h('thead', null, headRow(state, tableEl)), h('tbody', null, bodyRows(state)));
    keys.sync(hadFocus);
    replace(sortInfo, state.sort.length > 1
      ? [h('span', { text: `Sorted by ${state.sort.map((k) => `${k.field} ${k.desc ? '↓' : '↑'}`).join(', then ')}` }),
         h('button', { type: 'button', class: 'btn btn-sm btn-ghost', id: 'clear-sort', onclick: () => state.clearSort() }, 'Clear sort')]
      : null);
    const before = state.stack.length * PAGE;
    status.textContent = `${before + (state.rows.length ? 1 : 0)}–${before + state.rows.length} of ${state.total} row${state.total === 1 ? '' : 's'}`;
    if (state.stack.length) prev.removeAttribute('disabled'); else prev.setAttribute('disabled', '');
    if (state.next) next.removeAttribute('disabled'); else next.setAttribute('disabled', '');
  });
}

/**
 * The table's actions.
 * @param {import('./state.js').GridState} state @param {HTMLElement} deleteBtn
 */
function toolbar(state, deleteBtn) {
  const { name } = state;
  return h('div', { class: 'grid-toolbar' },
    h('span', { class: 'hint', text: 'Click a column to sort; Shift+click adds it as the next sort key.' }),
    h('span', { class: 'spacer' }),
    deleteBtn,
    h('button', { type: 'button', class: 'btn btn-sm', id: 'import-csv', onclick: () => importCsv(state) }, icon('upload'), 'Import CSV'),
    h('button', { type: 'button', class: 'btn btn-sm', id: 'export-csv', onclick: () => download(`${state.path}/export`, `${name}.csv`).catch((e) => toast(e.message, 'error')) }, icon('download'), 'Export CSV'),
    h('button', { type: 'button', class: 'btn btn-sm btn-primary', id: 'add-row', onclick: () => insertRow(state) }, icon('plus'), 'Add row'));
}

/** The head row: tick-all, one sortable head per column, actions. @param {import('./state.js').GridState} state @param {HTMLElement} tableEl */
function headRow(state, tableEl) {
  const all = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', 'aria-label': 'Select all rows on this page', id: 'select-all' }));
  all.addEventListener('change', () => {
    const boxes = /** @type {HTMLInputElement[]} */ ([...tableEl.querySelectorAll('tbody input[type=checkbox]')]);
    for (const box of boxes) box.checked = all.checked;
    state.tick(boxes.map((b) => /** @type {string} */ (b.dataset.id)), all.checked);
  });
  const several = state.sort.length > 1;
  return h('tr', null, h('th', { scope: 'col', class: 'pick' }, all), state.columns.map((c) => {
    const sortable = state.types[c] !== 'json';
    const at = state.sort.findIndex((k) => k.field === c);
    const key = state.sort[at];
    const ariaSort = at === 0 ? (key.desc ? 'descending' : 'ascending') : at > 0 ? 'other' : 'none';
    const mark = key ? `${key.desc ? ' ↓' : ' ↑'}${several ? at + 1 : ''}` : '';
    let btn = null;
    if (sortable) {
      btn = h('button', { type: 'button', class: 'sort', 'aria-label': `Sort by ${c}`, title: 'Click: sort by this column. Shift+click: add it as the next sort key.' }, c, mark ? h('span', { class: 'sort-mark', 'aria-hidden': 'true', text: mark }) : null);
      btn.addEventListener('click', (ev) => state.toggleSort(c, ev.shiftKey));
      // Shift+Enter adds the key from the keyboard (a keyboard click may not carry Shift).
      btn.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' && ev.shiftKey) { ev.preventDefault(); state.toggleSort(c, true); } });
    }
    return h('th', { scope: 'col', 'aria-sort': ariaSort, dataset: { col: c } },
      btn || c,
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
  const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', 'aria-label': `Select row ${r.id}`, dataset: { id: String(r.id) }, tabindex: '-1' }));
  box.addEventListener('change', () => state.tick([String(r.id)], box.checked));
  return box;
}

/**
 * One cell; editable ones open the inline editor (the row picker for references) on
 * double-click, Enter or F2. A reference shows the referenced row's label and, muted, its id.
 * @param {import('./state.js').GridState} state @param {any} r @param {string} c
 * @returns {HTMLElement}
 */
export function cell(state, r, c) {
  const v = r[c];
  const t = state.types[c];
  const editable = state.editable.has(c);
  const empty = v === null || v === undefined;
  const label = t === 'reference' && !empty ? state.refs.label(c, v) : undefined;
  const td = h('td', {
    class: [empty ? 'null' : '', ['integer', 'decimal'].includes(t) ? 'num' : '', SYSTEM.includes(c) ? 'sys' : '', editable ? 'editable' : '', t === 'reference' ? 'ref' : ''].filter(Boolean).join(' '),
    dataset: { col: c },
    title: label ? `${label} (id ${display(v)})` : display(v),
    tabindex: '-1',
  }, empty ? 'NULL' : label
    ? [h('span', { class: 'ref-label', text: label }), ' ', h('span', { class: 'ref-id', text: `#${display(v)}` })]
    : shown(v, t));
  if (editable) {
    const open = () => editCell(state, td, r, c, cell);
    td.addEventListener('dblclick', open);
    td.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === 'F2') { ev.preventDefault(); open(); } });
  }
  return td;
}
