// @ts-check
/** The Tables screen: every managed table, creating one, and importing a CSV as a new table. */
import { api, apiUpload } from './api.js';
import { h, replace, field, icon } from './dom.js';
import { dialog, toast, errorBox } from './ui.js';

const NAME_RE = /^[a-z][a-z0-9_]{0,62}$/;

/**
 * @param {HTMLElement} el
 * @param {any} ctx
 */
export async function mount(el, ctx) {
  const list = h('div', { class: 'table-list', 'aria-busy': 'true' });
  replace(el,
    h('div', { class: 'page-head' },
      h('div', null, h('h1', { text: 'Tables' }), h('p', { class: 'sub', text: 'Postgres tables your endpoints read and write.' })),
      h('div', { class: 'page-actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => importNew(ctx) }, icon('upload'), 'Import CSV'),
        h('button', { type: 'button', class: 'btn btn-primary', id: 'new-table', onclick: () => createTable(ctx) }, icon('plus'), 'New table'))),
    list);
  const res = await api('GET', '/tables');
  const tables = res.body.tables || [];
  list.removeAttribute('aria-busy');
  if (!tables.length) {
    const empty = h('div', { class: 'panel empty' },
      h('h2', { text: 'No tables yet' }),
      h('p', { text: 'Create a table to store data, then generate endpoints for it.' }),
      h('button', { type: 'button', class: 'btn btn-primary', onclick: () => createTable(ctx) }, icon('plus'), 'Create your first table'));
    replace(list, empty);
    // First run: an instance with no tables and no flows offers the sample project.
    const flows = await api('GET', '/flows').then((r) => r.body.flows || [], () => null);
    if (flows && !flows.length) replace(list, h('div', { class: 'first-run' }, sampleCard(el, ctx), empty));
    return;
  }
  replace(list, h('div', { class: 'cards' }, tables.map((/** @type {any} */ t) =>
    h('a', { class: 'card', href: `#/tables/${encodeURIComponent(t.name)}`, dataset: { table: t.name } },
      h('h2', null, icon('table'), t.name),
      t.description ? h('p', { class: 'hint', text: t.description }) : null,
      h('div', { class: 'meta' },
        h('span', { text: `${t.fields.length} field${t.fields.length === 1 ? '' : 's'}` }),
        h('span', { text: `id ${t.id_type || 'bigint'}` }),
        h('span', { text: `version ${t.version}` }))))));
}

/**
 * The first-run card: one click creates the sample project (`POST /sample-project`), then the
 * screen is drawn again with its tables.
 * @param {HTMLElement} el @param {any} ctx
 */
function sampleCard(el, ctx) {
  const problems = h('div');
  const button = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'btn btn-primary', id: 'sample-project' }, 'Create the sample project'));
  button.addEventListener('click', async () => {
    button.disabled = true;
    button.textContent = 'Creating…';
    try {
      const res = await api('POST', '/sample-project', { body: {} });
      toast(`Sample project created: ${res.body.tables.join(' and ')}, ${res.body.rows} rows, ${res.body.flows.length} live endpoints.`, 'success');
      await mount(el, ctx);
    } catch (e) {
      button.disabled = false;
      button.textContent = 'Create the sample project';
      replace(problems, errorBox(e));
    }
  });
  return h('section', { class: 'panel sample-card', 'aria-labelledby': 'sample-title' },
    h('h2', { id: 'sample-title', text: 'Start with a sample project' }),
    h('p', { text: 'A small library to explore, ready in one click:' }),
    h('ul', null,
      h('li', { text: 'tables authors and books (each book references its author), with a few rows' }),
      h('li', { text: 'published endpoints to list, get, create, update and delete both (for signed-in users)' }),
      h('li', { text: 'GET /api/authors/{id}/books, a flow drawn by hand, public, with request capture on' })),
    problems,
    button);
}

/** The "New table" dialog. */
async function createTable(/** @type {any} */ ctx) {
  const name = h('input', { type: 'text', name: 'table_name', required: true, placeholder: 'customers', autocomplete: 'off', spellcheck: 'false' });
  const description = h('input', { type: 'text', name: 'description', placeholder: 'Optional' });
  const idType = h('select', { name: 'id_type' }, h('option', { value: 'bigint', text: 'Whole numbers (1, 2, 3…)' }), h('option', { value: 'uuid', text: 'UUIDs' }));
  const crud = h('input', { type: 'checkbox', name: 'crud' });
  const problems = h('div');
  const created = await dialog({
    title: 'New table',
    body: (close) => {
      const form = h('form', { novalidate: true },
        field('Name', name, 'Lowercase letters, digits and _, starting with a letter.'),
        field('Description', description),
        field('Ids', idType, 'Fixed once the table exists.'),
        h('label', { class: 'check' }, crud, 'Also create draft endpoints to list, get, create, update and delete rows'),
        problems,
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'),
          h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create table')));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const n = /** @type {HTMLInputElement} */ (name).value.trim();
        if (!NAME_RE.test(n)) {
          replace(problems, errorBox({ message: 'Use lowercase letters, digits and _, starting with a letter (e.g. customers).' }));
          name.focus();
          return;
        }
        const body = { name: n, id_type: /** @type {HTMLSelectElement} */ (idType).value, fields: [] };
        const d = /** @type {HTMLInputElement} */ (description).value.trim();
        if (d) /** @type {any} */ (body).description = d;
        try {
          await api('POST', `/tables${/** @type {HTMLInputElement} */ (crud).checked ? '?crud=draft' : ''}`, { body });
          close(n);
        } catch (e) {
          replace(problems, errorBox(e));
        }
      });
      return form;
    },
  });
  if (created) {
    toast(`Table ${created} created. Add its fields.`, 'success');
    ctx.navigate(`#/tables/${encodeURIComponent(created)}/schema`);
  }
}

/** Creates a table from a CSV file (every column text; retype in the designer). */
async function importNew(/** @type {any} */ ctx) {
  const name = h('input', { type: 'text', name: 'table_name', required: true, placeholder: 'customers', autocomplete: 'off' });
  const file = h('input', { type: 'file', name: 'file', accept: '.csv,text/csv', required: true });
  const problems = h('div');
  const created = await dialog({
    title: 'Import a CSV as a new table',
    body: (close) => {
      const form = h('form', { novalidate: true },
        field('Table name', name),
        field('CSV file', file, 'The first line names the columns. Every column becomes a text field; change types afterwards in the designer.'),
        problems,
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'),
          h('button', { type: 'submit', class: 'btn btn-primary' }, 'Import')));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const f = /** @type {HTMLInputElement} */ (file).files?.[0];
        const n = /** @type {HTMLInputElement} */ (name).value.trim();
        if (!f || !NAME_RE.test(n)) {
          replace(problems, errorBox({ message: 'Choose a CSV file and a valid table name.' }));
          return;
        }
        try {
          const res = await apiUpload('POST', `/tables/import?name=${encodeURIComponent(n)}&mode=valid`, f, 'text/csv');
          close({ name: n, report: res.body });
        } catch (e) {
          replace(problems, errorBox(e));
        }
      });
      return form;
    },
  });
  if (created) {
    toast(`Imported ${created.report.imported} rows into ${created.name}${created.report.rejected ? `; ${created.report.rejected} rejected` : ''}.`, created.report.rejected ? 'error' : 'success');
    ctx.navigate(`#/tables/${encodeURIComponent(created.name)}/data`);
  }
}
