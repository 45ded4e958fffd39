// @ts-check
/**
 * Editing in the data grid: a cell in place (Enter or leaving saves, Escape cancels), a
 * reference cell with the row picker, adding a row in a dialog, deleting rows after a
 * confirmation, and importing a CSV with its per-row report. Changes go through `GridState`;
 * results are told with the shared toasts.
 */
import { field, h, replace } from '../dom.js';
import { confirmDialog, dialog, errorBox, toast } from '../ui.js';
import { pickRow } from './picker.js';
import { display, parseCell } from './values.js';

/** @typedef {import('./state.js').GridState} GridState */
/** @typedef {(state: GridState, r: any, c: string) => HTMLElement} CellRenderer */

/**
 * Replaces cell `td` (column `c` of row `r`) by an input until it is saved or cancelled.
 * @param {GridState} state @param {HTMLElement} td @param {any} r @param {string} c @param {CellRenderer} cell
 */
export function editCell(state, td, r, c, cell) {
  if (td.classList.contains('editing')) return;
  if (state.types[c] === 'reference') { editReference(state, td, r, c, cell); return; }
  const input = cellInput(state, r, c);
  td.classList.add('editing');
  replace(td, input);
  input.focus();
  if (input instanceof HTMLInputElement) input.select();
  let done = false;
  const finish = async (/** @type {boolean} */ save) => {
    if (done) return;
    done = true;
    // Leaving with Enter or Escape puts focus back on the cell; leaving by a click elsewhere
    // leaves it where the click put it.
    const refocus = document.activeElement === input;
    const parsed = save ? parseCell(state.types[c], input.value) : null;
    if (!parsed) { redraw(state, td, r, c, cell, refocus, false); return; }
    if (parsed.error) {
      toast(`${c}: ${parsed.error}`, 'error');
      redraw(state, td, r, c, cell, refocus, false);
      return;
    }
    await save_(state, td, r, c, cell, parsed.value, refocus);
  };
  input.addEventListener('keydown', (/** @type {any} */ ev) => {
    if (ev.key === 'Enter') { ev.preventDefault(); finish(true); }
    if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); finish(false); }
  });
  input.addEventListener('blur', () => finish(true));
}

/**
 * Writes `value` into field `c` of row `r` and redraws the row's cells (updated_at changes
 * too); a refusal is told and the cell shows its old value.
 * @param {GridState} state @param {HTMLElement} td @param {any} r @param {string} c
 * @param {CellRenderer} cell @param {any} value @param {boolean} refocus
 */
async function save_(state, td, r, c, cell, value, refocus) {
  try {
    await state.patch(r, c, value);
    redraw(state, td, r, c, cell, refocus, true);
    toast('Saved.', 'success');
  } catch (e) {
    const err = /** @type {any} */ (e);
    toast(err.details?.[0]?.message ? `${c}: ${err.details[0].message}` : err.message, 'error');
    redraw(state, td, r, c, cell, refocus, false);
  }
}

/**
 * Puts a fresh cell in place of `td` (and, with `row`, of the row's other cells).
 * @param {GridState} state @param {HTMLElement} td @param {any} r @param {string} c
 * @param {CellRenderer} cell @param {boolean} refocus @param {boolean} row
 */
function redraw(state, td, r, c, cell, refocus, row) {
  const tr = td.parentElement;
  const fresh = cell(state, r, c);
  td.replaceWith(fresh);
  if (row) {
    for (const other of state.columns) {
      if (other === c) continue;
      const old = tr?.querySelector(`td[data-col="${other}"]`);
      if (old) old.replaceWith(cell(state, r, other));
    }
  }
  if (refocus) fresh.focus();
  state.emit('cells');
}

/**
 * A reference cell: the row picker of the referenced table; picking saves the id, Clear
 * saves null.
 * @param {GridState} state @param {HTMLElement} td @param {any} r @param {string} c @param {CellRenderer} cell
 */
async function editReference(state, td, r, c, cell) {
  const f = state.def.fields.find((/** @type {any} */ x) => x.name === c);
  const table = state.refs.target(c);
  if (!f || !table) return;
  td.classList.add('editing');
  const picked = await pickRow({ table, def: state.refs.defs.get(table), field: c, required: !!f.required, current: r[c] });
  if (!td.isConnected) return;
  if (!picked) { redraw(state, td, r, c, cell, true, false); return; }
  if (picked.row) state.refs.remember(c, picked.row);
  await save_(state, td, r, c, cell, picked.row ? picked.row.id : null, true);
}

/** A select for booleans and enums, else a text input, holding the cell's value. @param {GridState} state @param {any} r @param {string} c */
function cellInput(state, r, c) {
  const t = state.types[c];
  if (t === 'boolean' || t === 'enum') {
    const f = state.def.fields.find((/** @type {any} */ x) => x.name === c);
    const opts = t === 'boolean' ? ['true', 'false'] : f.values;
    const sel = /** @type {HTMLSelectElement} */ (h('select', { 'aria-label': `${c} of row ${r.id}` },
      f.required ? null : h('option', { value: '', text: 'NULL' }),
      opts.map((/** @type {string} */ o) => h('option', { value: o, text: o }))));
    sel.value = r[c] === null ? '' : String(r[c]);
    return sel;
  }
  return /** @type {HTMLInputElement} */ (h('input', { type: 'text', 'aria-label': `${c} of row ${r.id}`, value: r[c] === null || r[c] === undefined ? '' : display(r[c]) }));
}

/** @param {GridState} state */
export async function deleteSelected(state) {
  const n = state.selected.size;
  const ok = await confirmDialog({ title: `Delete ${n} row${n === 1 ? '' : 's'}?`, message: 'They are deleted together, or not at all. This cannot be undone.', confirm: 'Delete', danger: true });
  if (!ok) return;
  try {
    const deleted = await state.deleteSelected();
    // The button is gone with the ticks: the focus goes to the grid.
    state.emit('focus');
    toast(`${deleted} row${deleted === 1 ? '' : 's'} deleted.`, 'success');
  } catch (e) {
    toast(/** @type {any} */ (e).message, 'error');
  }
}

/** @param {GridState} state @param {any} r */
export async function deleteRow(state, r) {
  const ok = await confirmDialog({ title: `Delete row ${r.id}?`, message: 'This cannot be undone.', confirm: 'Delete', danger: true });
  if (!ok) return;
  try {
    await state.deleteRow(r.id);
    // The row's button is gone: the focus goes back to the grid, on the row that took its place.
    state.emit('focus');
    toast(`Row ${r.id} deleted.`, 'success');
  } catch (e) {
    toast(/** @type {any} */ (e).message, 'error');
  }
}

/** The add-row dialog: one input per field; empty ones take their defaults. @param {GridState} state */
export async function insertRow(state) {
  const { def } = state;
  /** @type {Map<string, HTMLInputElement | HTMLSelectElement>} */
  const inputs = new Map();
  const problemsBox = h('div');
  const created = await dialog({
    title: `Add a row to ${state.name}`,
    body: (close) => {
      const form = h('form', { novalidate: true, id: 'row-form' },
        def.fields.map((/** @type {any} */ f) => {
          const input = fieldInput(f);
          inputs.set(f.name, input);
          if (f.type === 'reference' && state.refs.target(f.name)) {
            const fieldEl = field(`${f.name}`, input, `reference to ${f.table}${f.required ? ', required' : ''}: type an id or choose a row`);
            input.insertAdjacentElement('afterend', referenceButton(state, f, /** @type {HTMLInputElement} */ (input)));
            return fieldEl;
          }
          return field(`${f.name}`, input, `${f.type}${f.required ? ', required' : ''}`);
        }),
        problemsBox,
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'),
          h('button', { type: 'submit', class: 'btn btn-primary' }, 'Add row')));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        /** @type {Record<string, any>} */
        const row = {};
        const errs = [];
        for (const f of def.fields) {
          const raw = /** @type {any} */ (inputs.get(f.name)).value;
          if (raw === '') continue; // left out: the default applies
          const p = parseCell(f.type, raw);
          if (p.error) errs.push({ pointer: `/${f.name}`, message: p.error });
          else row[f.name] = p.value;
        }
        if (errs.length) { replace(problemsBox, errorBox({ message: 'Some values do not fit their fields.', details: errs })); return; }
        try {
          close(await state.insert(row));
        } catch (e) {
          replace(problemsBox, errorBox(e));
        }
      });
      return form;
    },
  });
  if (created) {
    toast(`Row ${created.id} added.`, 'success');
    await state.load();
  }
}

/**
 * The button next to a reference input of the add-row form: opens the row picker and puts the
 * picked id into the input (Clear empties it), with the row's label beside it.
 * @param {GridState} state @param {any} f @param {HTMLInputElement} input
 */
function referenceButton(state, f, input) {
  const table = /** @type {string} */ (state.refs.target(f.name));
  const label = h('span', { class: 'ref-picked hint', 'aria-live': 'polite' });
  const btn = h('button', { type: 'button', class: 'btn btn-sm', 'aria-label': `Choose ${f.name}`, dataset: { pick: f.name } }, 'Choose…');
  btn.addEventListener('click', async () => {
    const picked = await pickRow({ table, def: state.refs.defs.get(table), field: f.name, required: !!f.required, current: input.value });
    if (picked) {
      input.value = picked.row ? String(picked.row.id) : '';
      if (picked.row) state.refs.remember(f.name, picked.row);
      label.textContent = picked.row ? (state.refs.label(f.name, picked.row.id) || '') : '';
    }
    input.focus();
  });
  input.addEventListener('input', () => { label.textContent = ''; });
  return h('span', { class: 'ref-choose' }, btn, label);
}

/** The add-row dialog's control for field `f`. @param {any} f @returns {HTMLInputElement | HTMLSelectElement} */
function fieldInput(f) {
  if (f.type === 'boolean' || f.type === 'enum') {
    return /** @type {HTMLSelectElement} */ (h('select', { name: f.name },
      h('option', { value: '', text: f.default !== undefined ? `default (${display(f.default)})` : 'NULL' }),
      (f.type === 'boolean' ? ['true', 'false'] : f.values).map((/** @type {string} */ o) => h('option', { value: o, text: o }))));
  }
  return /** @type {HTMLInputElement} */ (h('input', {
    type: f.type === 'password' ? 'password' : 'text', name: f.name, autocomplete: 'off',
    placeholder: f.default !== undefined ? `default: ${display(f.default)}` : (f.required ? 'required' : 'optional'),
  }));
}

/** The CSV import dialog; the grid reloads when rows came in. @param {GridState} state */
export async function importCsv(state) {
  const file = /** @type {HTMLInputElement} */ (h('input', { type: 'file', name: 'csv_file', accept: '.csv,text/csv', id: 'csv-file' }));
  const mode = /** @type {HTMLSelectElement} */ (h('select', { name: 'mode', id: 'csv-mode' },
    h('option', { value: 'valid', text: 'Import the valid rows, report the others' }),
    h('option', { value: 'all', text: 'All or nothing: import only if every row is valid' })));
  const result = h('div', { id: 'import-report', 'aria-live': 'polite' });
  let imported = false;
  await dialog({
    title: `Import CSV into ${state.name}`,
    wide: true,
    body: (close) => {
      const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'start-import' }, 'Import');
      const form = h('form', { novalidate: true },
        field('CSV file', file, `The first line names the columns: ${state.columns.join(', ')}. Missing fields take their defaults.`),
        field('Invalid rows', mode),
        result,
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Close'),
          submit));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const f = file.files?.[0];
        if (!f) { replace(result, errorBox({ message: 'Choose a CSV file first.' })); return; }
        submit.setAttribute('disabled', '');
        try {
          const r = await state.importCsv(f, mode.value);
          imported = imported || r.imported > 0;
          replace(result, report(r.imported, r.rejected, r.errors));
        } catch (e) {
          const err = /** @type {any} */ (e);
          if (err.code === 'csv.invalid_rows') {
            replace(result, h('div', { class: 'error-box', role: 'alert' }, h('strong', { text: err.message })), reportTable(err.details));
          } else {
            replace(result, errorBox(err));
          }
        }
        submit.removeAttribute('disabled');
      });
      return form;
    },
  });
  if (imported) await state.reload();
}

/** The import report: counts and a table of the rejected rows. */
function report(/** @type {number} */ imported, /** @type {number} */ rejected, /** @type {any[]} */ errors) {
  return h('div', null,
    h('div', { class: rejected ? 'error-box' : 'success-box', role: rejected ? 'alert' : 'status' },
      h('strong', { text: `${imported} row${imported === 1 ? '' : 's'} imported` }),
      rejected ? `, ${rejected} rejected:` : '.'),
    errors && errors.length ? reportTable(errors) : null);
}

function reportTable(/** @type {any[]} */ errors) {
  return h('div', { class: 'report' }, h('table', { class: 'data', id: 'import-errors' },
    h('thead', null, h('tr', null, h('th', { scope: 'col', text: 'Line' }), h('th', { scope: 'col', text: 'Field' }), h('th', { scope: 'col', text: 'Problem' }))),
    h('tbody', null, (errors || []).map((e) => h('tr', null,
      h('td', { class: 'num', text: String(e.row ?? '') }),
      h('td', { class: 'mono', text: e.field ?? '(whole row)' }),
      h('td', { text: e.message }))))));
}
