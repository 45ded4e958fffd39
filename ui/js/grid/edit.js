// @ts-check
/**
 * Editing in the data grid: a cell in place (Enter or leaving saves, Escape cancels), adding a
 * row in a dialog, deleting rows after a confirmation, and importing a CSV with its per-row
 * report. Changes go through `GridState`; results are told with the shared toasts.
 */
import { field, h, replace } from '../dom.js';
import { confirmDialog, dialog, errorBox, toast } from '../ui.js';
import { display, parseCell } from './values.js';

/** @typedef {import('./state.js').GridState} GridState */
/** @typedef {(state: GridState, r: any, c: string) => HTMLElement} CellRenderer */

/**
 * Replaces cell `td` (column `c` of row `r`) by an input until it is saved or cancelled.
 * @param {GridState} state @param {HTMLElement} td @param {any} r @param {string} c @param {CellRenderer} cell
 */
export function editCell(state, td, r, c, cell) {
  if (td.classList.contains('editing')) return;
  const input = cellInput(state, r, c);
  td.classList.add('editing');
  replace(td, input);
  input.focus();
  if (input instanceof HTMLInputElement) input.select();
  let done = false;
  const finish = async (/** @type {boolean} */ save) => {
    if (done) return;
    done = true;
    const parsed = save ? parseCell(state.types[c], input.value) : null;
    if (!parsed) { td.replaceWith(cell(state, r, c)); return; }
    if (parsed.error) {
      toast(`${c}: ${parsed.error}`, 'error');
      td.replaceWith(cell(state, r, c));
      return;
    }
    try {
      await state.patch(r, c, parsed.value);
      const tr = td.parentElement;
      td.replaceWith(cell(state, r, c));
      // Other cells may change too (updated_at).
      for (const other of state.columns) {
        if (other === c) continue;
        const old = tr?.querySelector(`td[data-col="${other}"]`);
        if (old) old.replaceWith(cell(state, r, other));
      }
      toast('Saved.', 'success');
    } catch (e) {
      const err = /** @type {any} */ (e);
      toast(err.details?.[0]?.message ? `${c}: ${err.details[0].message}` : err.message, 'error');
      td.replaceWith(cell(state, r, c));
    }
  };
  input.addEventListener('keydown', (/** @type {any} */ ev) => {
    if (ev.key === 'Enter') { ev.preventDefault(); finish(true); }
    if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); finish(false); }
  });
  input.addEventListener('blur', () => finish(true));
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
