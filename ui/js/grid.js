// @ts-check
/**
 * The data grid of one table: cursor paging, sorting by a column, a filter, inline edit
 * (double-click or Enter on a cell; Enter saves, Escape cancels), insert, delete, CSV import
 * with the per-row error report, and CSV export.
 */
import { api, apiUpload, download } from './api.js';
import { h, replace, field, icon } from './dom.js';
import { dialog, confirmDialog, toast, errorBox } from './ui.js';

const PAGE = 50;
const SYSTEM = ['id', 'created_at', 'updated_at'];
const TEXT_OPS = [['contains', 'contains'], ['eq', '='], ['ne', '≠'], ['starts_with', 'starts with'], ['is_null', 'is empty']];
const CMP_OPS = [['eq', '='], ['ne', '≠'], ['lt', '<'], ['le', '≤'], ['gt', '>'], ['ge', '≥'], ['is_null', 'is empty']];

/**
 * @param {HTMLElement} el
 * @param {any} ctx
 */
export async function mount(el, ctx) {
  const def = ctx.table;
  const name = def.name;
  /** @type {Record<string, any>} */
  const types = { id: def.id_type === 'uuid' ? 'uuid' : 'integer', created_at: 'timestamp', updated_at: 'timestamp' };
  for (const f of def.fields) types[f.name] = f.type;
  const columns = ['id', ...def.fields.filter((/** @type {any} */ f) => f.type !== 'password').map((/** @type {any} */ f) => f.name), 'created_at', 'updated_at'];
  const editable = new Set(def.fields.filter((/** @type {any} */ f) => f.type !== 'password').map((/** @type {any} */ f) => f.name));

  const view = {
    sort: 'id',
    /** @type {any} */ filter: null,
    /** @type {(string | null)[]} cursors of the pages before the current one */ stack: [],
    /** @type {string | null} */ cursor: null,
    /** @type {string | null} */ next: null,
    total: 0,
    /** @type {any[]} */ rows: [],
  };

  /** Ids of the rows ticked on this page. */
  const selected = new Set();
  const deleteSelected = h('button', { type: 'button', class: 'btn btn-sm btn-danger', id: 'delete-selected', hidden: true, onclick: () => deleteMany() });
  const tableEl = h('table', { class: 'data', id: 'rows', 'aria-label': `Rows of ${name}` });
  const status = h('span', { 'aria-live': 'polite' });
  const prev = h('button', { type: 'button', class: 'btn btn-sm', onclick: () => page(-1) }, '← Previous');
  const next = h('button', { type: 'button', class: 'btn btn-sm', id: 'next-page', onclick: () => page(1) }, 'Next →');
  const problems = h('div');

  // Filter controls: one condition.
  const fField = h('select', { 'aria-label': 'Filter field', id: 'filter-field' }, columns.filter((c) => types[c] !== 'json').map((c) => h('option', { value: c, text: c })));
  const fOp = h('select', { 'aria-label': 'Filter operator', id: 'filter-op' });
  const fValue = h('input', { type: 'search', 'aria-label': 'Filter value', id: 'filter-value', placeholder: 'value' });
  const setOps = () => {
    const t = types[/** @type {HTMLSelectElement} */ (fField).value];
    const ops = ['text', 'email', 'enum'].includes(t) ? TEXT_OPS : CMP_OPS;
    replace(fOp, ops.map(([v, l]) => h('option', { value: v, text: l })));
  };
  fField.addEventListener('change', setOps);
  if (columns.includes(def.fields[0]?.name)) /** @type {HTMLSelectElement} */ (fField).value = def.fields[0].name;
  setOps();
  const filterForm = h('form', { class: 'grid-toolbar', role: 'search', 'aria-label': 'Filter rows' },
    fField, fOp, fValue,
    h('button', { type: 'submit', class: 'btn btn-sm' }, 'Filter'),
    h('button', { type: 'button', class: 'btn btn-sm btn-ghost', onclick: () => { view.filter = null; /** @type {HTMLInputElement} */ (fValue).value = ''; reload(); } }, 'Clear'),
    h('span', { class: 'spacer' }),
    deleteSelected,
    h('button', { type: 'button', class: 'btn btn-sm', id: 'import-csv', onclick: () => importCsv() }, icon('upload'), 'Import CSV'),
    h('button', { type: 'button', class: 'btn btn-sm', id: 'export-csv', onclick: () => download(`/tables/${encodeURIComponent(name)}/export`, `${name}.csv`).catch((e) => toast(e.message, 'error')) }, icon('download'), 'Export CSV'),
    h('button', { type: 'button', class: 'btn btn-sm btn-primary', id: 'add-row', onclick: () => insertRow() }, icon('plus'), 'Add row'));
  filterForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = /** @type {HTMLSelectElement} */ (fField).value;
    const op = /** @type {HTMLSelectElement} */ (fOp).value;
    const raw = /** @type {HTMLInputElement} */ (fValue).value;
    if (op === 'is_null') {
      view.filter = { field: f, op, value: raw.trim() !== 'false' };
    } else {
      const v = parseCell(types[f], raw);
      if (v.error) { replace(problems, errorBox({ message: `${f}: ${v.error}` })); return; }
      view.filter = { field: f, op, value: v.value };
    }
    reload();
  });

  replace(el, h('section', { class: 'panel' },
    filterForm,
    h('div', { style: null }, problems),
    h('div', { class: 'table-wrap' }, tableEl),
    h('div', { class: 'grid-footer' }, status, h('div', { class: 'page-actions' }, prev, next))));

  async function load() {
    const q = new URLSearchParams({ limit: String(PAGE), count: 'true' });
    if (view.cursor) q.set('cursor', view.cursor); else q.set('sort', view.sort);
    if (view.filter) q.set('filter', JSON.stringify(view.filter));
    try {
      const res = await api('GET', `/tables/${encodeURIComponent(name)}/rows?${q}`);
      replace(problems);
      view.rows = res.body.rows;
      view.next = res.body.next_cursor;
      view.total = res.body.total ?? view.total;
    } catch (e) {
      replace(problems, errorBox(e));
      view.rows = [];
      view.next = null;
    }
    draw();
  }

  function reload() {
    view.stack = [];
    view.cursor = null;
    return load();
  }

  function page(/** @type {number} */ dir) {
    if (dir > 0 && view.next) {
      view.stack.push(view.cursor);
      view.cursor = view.next;
    } else if (dir < 0 && view.stack.length) {
      view.cursor = view.stack.pop() ?? null;
    } else {
      return;
    }
    load();
  }

  function toggleSort(/** @type {string} */ col) {
    view.sort = view.sort === col ? `-${col}` : col;
    reload();
  }

  function draw() {
    const sortCol = view.sort.replace(/^-/, '');
    const desc = view.sort.startsWith('-');
    selected.clear();
    syncSelection();
    const all = h('input', { type: 'checkbox', 'aria-label': 'Select all rows on this page', id: 'select-all' });
    all.addEventListener('change', () => {
      const on = /** @type {HTMLInputElement} */ (all).checked;
      for (const box of tableEl.querySelectorAll('tbody input[type=checkbox]')) {
        /** @type {HTMLInputElement} */ (box).checked = on;
        const id = /** @type {HTMLElement} */ (box).dataset.id;
        if (on) selected.add(id); else selected.delete(id);
      }
      syncSelection();
    });
    const head = h('tr', null, h('th', { scope: 'col', class: 'pick' }, all), columns.map((c) => {
      const sortable = types[c] !== 'json';
      const ariaSort = sortCol === c ? (desc ? 'descending' : 'ascending') : 'none';
      return h('th', { scope: 'col', 'aria-sort': ariaSort },
        sortable
          ? h('button', { type: 'button', class: 'sort', onclick: () => toggleSort(c), 'aria-label': `Sort by ${c}` }, c, sortCol === c ? (desc ? ' ↓' : ' ↑') : '')
          : c,
        h('span', { class: 'type', text: types[c] }));
    }), h('th', { scope: 'col' }, h('span', { class: 'sr-only', text: 'Actions' })));
    const body = view.rows.map((r) => h('tr', { dataset: { id: String(r.id) } },
      h('td', { class: 'pick' }, pick(r)),
      columns.map((c) => cell(r, c)),
      h('td', { class: 'actions' }, h('button', { type: 'button', class: 'btn-icon', 'aria-label': `Delete row ${r.id}`, onclick: () => deleteRow(r) }, icon('trash')))));
    replace(tableEl, h('thead', null, head), h('tbody', null, body.length ? body : h('tr', null, h('td', { colspan: String(columns.length + 2), class: 'null', text: view.filter ? 'No rows match the filter.' : 'No rows yet. Add one or import a CSV.' }))));
    const first = view.stack.length * PAGE + (view.rows.length ? 1 : 0);
    status.textContent = `${first}–${view.stack.length * PAGE + view.rows.length} of ${view.total} row${view.total === 1 ? '' : 's'}`;
    if (view.stack.length) prev.removeAttribute('disabled'); else prev.setAttribute('disabled', '');
    if (view.next) next.removeAttribute('disabled'); else next.setAttribute('disabled', '');
  }

  function cell(/** @type {any} */ r, /** @type {string} */ c) {
    const v = r[c];
    const t = types[c];
    const td = h('td', {
      class: [v === null || v === undefined ? 'null' : '', ['integer', 'decimal'].includes(t) ? 'num' : '', SYSTEM.includes(c) ? 'sys' : '', editable.has(c) ? 'editable' : ''].filter(Boolean).join(' '),
      dataset: { col: c },
      title: display(v),
      tabindex: editable.has(c) ? '0' : null,
    }, v === null || v === undefined ? 'NULL' : shown(v, t));
    if (editable.has(c)) {
      td.addEventListener('dblclick', () => edit(td, r, c));
      td.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === 'F2') { ev.preventDefault(); edit(td, r, c); } });
    }
    return td;
  }

  function pick(/** @type {any} */ r) {
    const box = h('input', { type: 'checkbox', 'aria-label': `Select row ${r.id}`, dataset: { id: String(r.id) } });
    box.addEventListener('change', () => {
      if (/** @type {HTMLInputElement} */ (box).checked) selected.add(String(r.id)); else selected.delete(String(r.id));
      syncSelection();
    });
    return box;
  }

  function syncSelection() {
    deleteSelected.hidden = selected.size === 0;
    deleteSelected.textContent = `Delete ${selected.size} selected`;
  }

  async function deleteMany() {
    const ids = [...selected];
    const ok = await confirmDialog({ title: `Delete ${ids.length} row${ids.length === 1 ? '' : 's'}?`, message: 'They are deleted together, or not at all. This cannot be undone.', confirm: 'Delete', danger: true });
    if (!ok) return;
    try {
      const res = await api('POST', `/tables/${encodeURIComponent(name)}/rows/delete`, { body: { ids } });
      toast(`${res.body.deleted} row${res.body.deleted === 1 ? '' : 's'} deleted.`, 'success');
      await load();
    } catch (e) {
      toast(/** @type {any} */ (e).message, 'error');
    }
  }

  /** Inline edit of one cell. */
  function edit(/** @type {HTMLElement} */ td, /** @type {any} */ r, /** @type {string} */ c) {
    if (td.classList.contains('editing')) return;
    const t = types[c];
    const f = def.fields.find((/** @type {any} */ x) => x.name === c);
    /** @type {HTMLInputElement | HTMLSelectElement} */
    let input;
    if (t === 'boolean' || t === 'enum') {
      const opts = t === 'boolean' ? ['true', 'false'] : f.values;
      input = /** @type {HTMLSelectElement} */ (h('select', { 'aria-label': `${c} of row ${r.id}` },
        f.required ? null : h('option', { value: '', text: 'NULL' }),
        opts.map((/** @type {string} */ o) => h('option', { value: o, text: o }))));
      input.value = r[c] === null ? '' : String(r[c]);
    } else {
      input = /** @type {HTMLInputElement} */ (h('input', { type: 'text', 'aria-label': `${c} of row ${r.id}`, value: r[c] === null || r[c] === undefined ? '' : display(r[c]) }));
    }
    td.classList.add('editing');
    replace(td, input);
    input.focus();
    if (input instanceof HTMLInputElement) input.select();
    let done = false;
    const finish = async (/** @type {boolean} */ save) => {
      if (done) return;
      done = true;
      if (!save) { td.replaceWith(cell(r, c)); return; }
      const parsed = parseCell(t, input.value);
      if (parsed.error) {
        toast(`${c}: ${parsed.error}`, 'error');
        td.replaceWith(cell(r, c));
        return;
      }
      try {
        const res = await api('PATCH', `/tables/${encodeURIComponent(name)}/rows/${encodeURIComponent(r.id)}`, { body: { [c]: parsed.value } });
        Object.assign(r, res.body);
        const tr = td.parentElement;
        td.replaceWith(cell(r, c));
        // Other cells may change too (updated_at).
        for (const other of columns) {
          if (other === c) continue;
          const old = tr?.querySelector(`td[data-col="${other}"]`);
          if (old) old.replaceWith(cell(r, other));
        }
        toast('Saved.', 'success');
      } catch (e) {
        toast(/** @type {any} */ (e).details?.[0]?.message ? `${c}: ${/** @type {any} */ (e).details[0].message}` : /** @type {any} */ (e).message, 'error');
        td.replaceWith(cell(r, c));
      }
    };
    input.addEventListener('keydown', (/** @type {any} */ ev) => {
      if (ev.key === 'Enter') { ev.preventDefault(); finish(true); }
      if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); finish(false); }
    });
    input.addEventListener('blur', () => finish(true));
  }

  async function deleteRow(/** @type {any} */ r) {
    const ok = await confirmDialog({ title: `Delete row ${r.id}?`, message: 'This cannot be undone.', confirm: 'Delete', danger: true });
    if (!ok) return;
    try {
      await api('DELETE', `/tables/${encodeURIComponent(name)}/rows/${encodeURIComponent(r.id)}`);
      toast(`Row ${r.id} deleted.`, 'success');
      await load();
    } catch (e) {
      toast(/** @type {any} */ (e).message, 'error');
    }
  }

  async function insertRow() {
    /** @type {Map<string, HTMLInputElement | HTMLSelectElement>} */
    const inputs = new Map();
    const problemsBox = h('div');
    const created = await dialog({
      title: `Add a row to ${name}`,
      body: (close) => {
        const form = h('form', { novalidate: true, id: 'row-form' },
          def.fields.map((/** @type {any} */ f) => {
            /** @type {any} */
            let input;
            if (f.type === 'boolean' || f.type === 'enum') {
              input = h('select', { name: f.name },
                h('option', { value: '', text: f.default !== undefined ? `default (${display(f.default)})` : 'NULL' }),
                (f.type === 'boolean' ? ['true', 'false'] : f.values).map((/** @type {string} */ o) => h('option', { value: o, text: o })));
            } else {
              input = h('input', {
                type: f.type === 'password' ? 'password' : 'text', name: f.name, autocomplete: 'off',
                placeholder: f.default !== undefined ? `default: ${display(f.default)}` : (f.required ? 'required' : 'optional'),
              });
            }
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
            const res = await api('POST', `/tables/${encodeURIComponent(name)}/rows`, { body: row });
            close(res.body);
          } catch (e) {
            replace(problemsBox, errorBox(e));
          }
        });
        return form;
      },
    });
    if (created) {
      toast(`Row ${created.id} added.`, 'success');
      await load();
    }
  }

  async function importCsv() {
    const file = h('input', { type: 'file', name: 'csv_file', accept: '.csv,text/csv', id: 'csv-file' });
    const mode = h('select', { name: 'mode', id: 'csv-mode' },
      h('option', { value: 'valid', text: 'Import the valid rows, report the others' }),
      h('option', { value: 'all', text: 'All or nothing: import only if every row is valid' }));
    const result = h('div', { id: 'import-report', 'aria-live': 'polite' });
    let imported = false;
    await dialog({
      title: `Import CSV into ${name}`,
      wide: true,
      body: (close) => {
        const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'start-import' }, 'Import');
        const form = h('form', { novalidate: true },
          field('CSV file', file, `The first line names the columns: ${columns.join(', ')}. Missing fields take their defaults.`),
          field('Invalid rows', mode),
          result,
          h('div', { class: 'dialog-actions' },
            h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Close'),
            submit));
        form.addEventListener('submit', async (ev) => {
          ev.preventDefault();
          const f = /** @type {HTMLInputElement} */ (file).files?.[0];
          if (!f) { replace(result, errorBox({ message: 'Choose a CSV file first.' })); return; }
          submit.setAttribute('disabled', '');
          try {
            const res = await apiUpload('POST', `/tables/${encodeURIComponent(name)}/import?mode=${/** @type {HTMLSelectElement} */ (mode).value}`, f, 'text/csv');
            imported = imported || res.body.imported > 0;
            replace(result, report(res.body.imported, res.body.rejected, res.body.errors));
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
    if (imported) await reload();
  }

  await load();
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

/** A value as a cell shows it: timestamps to the second, in UTC; the full value is the title. */
function shown(/** @type {any} */ v, /** @type {string} */ type) {
  if (type === 'timestamp' && typeof v === 'string') {
    const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(v);
    if (m) return `${m[1]} ${m[2]}`;
  }
  return display(v);
}

/** How a value shows in a cell. */
function display(/** @type {any} */ v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/**
 * A cell's text as the JSON value of its type. Empty text is null (except for text fields).
 * @param {string} type
 * @param {string} raw
 * @returns {{value?: any, error?: string}}
 */
export function parseCell(type, raw) {
  const t = raw.trim();
  if (type === 'text') return { value: raw };
  if (t === '') return { value: null };
  switch (type) {
    case 'integer':
    case 'reference':
      if (!/^-?\d+$/.test(t)) return type === 'reference' && !/^\d/.test(t) ? { value: t } : { error: 'expected a whole number' };
      return { value: Number.isSafeInteger(Number(t)) ? Number(t) : t };
    case 'decimal':
      if (!/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t)) return { error: 'expected a number' };
      return { value: t.replace(/[-.]/g, '').length > 15 ? t : Number(t) };
    case 'boolean':
      if (['true', 't', 'yes', '1'].includes(t.toLowerCase())) return { value: true };
      if (['false', 'f', 'no', '0'].includes(t.toLowerCase())) return { value: false };
      return { error: 'expected true or false' };
    case 'json':
      try { return { value: JSON.parse(t) }; } catch { return { error: 'expected JSON' }; }
    default:
      return { value: t };
  }
}
