// @ts-check
// The endpoints list: flows grouped by API group (or first path segment), functions apart,
// each with method, path and published/draft state and a menu (duplicate, rename, delete);
// create blank, from a table's CRUD template (or regenerate it), from a built-in template, or
// from a file.

import { api } from '../api.js';
import { h, icon } from '../dom.js';
import { confirmDialog, dialog, errorBox, toast } from '../ui.js';
import { fileButton, importDialog } from './io.js';
import { deleteFlow, duplicateFlow, renameFlow, renameStored, rowMenu } from './lifecycle.js';

/** @param {HTMLElement} root */
export async function mountList(root) {
  root.replaceChildren(h('p', { class: 'fl-muted fl-loading', text: 'Loading endpoints…' }));
  let flows;
  try {
    flows = (await api('GET', '/flows')).body.flows;
  } catch (e) {
    root.replaceChildren(errorBox(e));
    return () => {};
  }
  const filter = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', type: 'search', placeholder: 'Filter by name or path', 'aria-label': 'Filter endpoints' }));
  const body = h('div', { class: 'fl-list-body' });
  const head = h('header', { class: 'fl-list-head' },
    h('h1', { text: 'Endpoints & functions' }),
    h('div', { class: 'fl-tools', role: 'toolbar', 'aria-label': 'Create' },
      h('button', { class: 'fl-btn fl-primary', type: 'button', onclick: () => createBlank(true) }, icon('plus'), 'New endpoint'),
      h('button', { class: 'fl-btn', type: 'button', onclick: () => createBlank(false) }, icon('function'), 'New function'),
      h('button', { class: 'fl-btn', type: 'button', text: 'CRUD from a table…', onclick: () => crud(() => mountList(root)) }),
      h('button', { class: 'fl-btn', type: 'button', text: 'From a template…', onclick: () => fromTemplate(flows) }),
      fileButton('Import file…', 'Create or replace a flow from a .flow.json file', (text) => importFile(flows, text)),
      h('a', { class: 'fl-btn fl-link', href: '/api/docs', target: '_blank', rel: 'noopener' }, 'API docs', icon('external'))),
    filter);
  root.replaceChildren(h('div', { class: 'fl-list' }, head, body));

  const reload = () => mountList(root);
  const draw = () => drawList(body, flows, filter.value.trim().toLowerCase(), reload);
  filter.addEventListener('input', draw);
  draw();

  return () => {};
}

/** The group of the flows with a trigger (schedules, table triggers, jobs). */
const BACKGROUND = 'Background (schedules, table changes, jobs)';

/** Where a method sorts among the flows of one path. @param {string | undefined} m */
const order = (m) => ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].indexOf(m || '');

/**
 * The list of flows matching `q`, grouped by API group or first path segment; functions last.
 * @param {HTMLElement} body @param {any[]} flows @param {string} q @param {() => void} reload
 */
function drawList(body, flows, q, reload) {
  const shown = flows.filter((f) => !q || f.name.includes(q) || (f.path || '').toLowerCase().includes(q));
  body.replaceChildren();
  if (!flows.length) {
    body.append(h('div', { class: 'fl-empty' }, h('h2', { text: 'No endpoints yet' }),
      h('p', { text: 'Start with CRUD endpoints for one of your tables, a template, or a blank endpoint.' })));
    return;
  }
  const groups = new Map();
  for (const f of shown) {
    const g = f.path ? (f.group || f.path.split('/').filter(Boolean)[0] || '/') : f.trigger ? BACKGROUND : 'Functions';
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(f);
  }
  const last = (/** @type {string} */ g) => (g === 'Functions' ? 2 : g === BACKGROUND ? 1 : 0);
  const names = [...groups.keys()].sort((a, b) => last(a) - last(b) || a.localeCompare(b));
  for (const g of names) {
    const items = groups.get(g).sort((a, b) => (a.path || a.name).localeCompare(b.path || b.name) || order(a.method) - order(b.method));
    body.append(h('section', { class: 'fl-group', 'aria-label': `Group ${g}` },
      h('h2', { class: 'fl-group-title', text: g === 'Functions' || g === BACKGROUND ? g : groupTitle(g, groups.get(g)[0]) }),
      h('ul', { class: 'fl-rows' }, ...items.map((fl) => row(fl, reload)))));
  }
}

/** One flow of the list: its link and its menu. @param {any} fl @param {() => void} reload */
function row(fl, reload) {
  const link = h('a', { class: 'fl-row', href: `#/flows/${fl.id}`, 'data-flow': fl.name },
    fl.trigger
      ? h('span', { class: 'fl-method fl-m-fn', text: fl.trigger })
      : h('span', { class: `fl-method fl-m-${(fl.method || 'fn').toLowerCase()}`, title: fl.method ? undefined : 'function' }, fl.method || icon('function', { label: 'function', size: 14 })),
    h('span', { class: 'fl-row-path', text: fl.path || fl.name }),
    h('span', { class: 'fl-row-name', text: fl.name }),
    h('span', { class: fl.published_version ? 'fl-pill fl-pill-live' : 'fl-pill', text: fl.published_version ? `live v${fl.published_version}` : 'draft' }));
  link.style.flex = '1';
  link.style.minWidth = '0';
  const menu = rowMenu(`Actions for ${fl.name}`, [
    ['Duplicate…', async () => { if (await duplicateFlow(fl)) reload(); }],
    ['Rename…', async () => { if (await renameFlow(fl, (name) => renameStored(fl.id, name))) reload(); }],
    ['Delete…', async () => { if (await deleteFlow(fl)) reload(); }],
  ]);
  menu.style.marginRight = '8px';
  const li = h('li', { 'data-flow-row': fl.name }, link, menu);
  li.style.display = 'flex';
  li.style.alignItems = 'center';
  return li;
}

/** A group's title: its API group, or its first path segment. @param {string} g @param {any} first */
const groupTitle = (g, first) => (first.group ? g : `/${g}`);

/** @param {number} id */
function open(id) { location.hash = `#/flows/${id}`; }

async function createBlank(endpoint) {
  const id = await dialog({ title: endpoint ? 'New endpoint' : 'New function', cls: 'fl-dialog', body: (close) => {
    const name = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', id: 'fl-new-name', required: true, spellcheck: false, placeholder: 'e.g. list_orders' }));
    const method = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input', id: 'fl-new-method' }, ...['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map((m) => new Option(m, m))));
    const path = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', id: 'fl-new-path', spellcheck: false, placeholder: '/orders/{id}' }));
    const out = h('div', { 'aria-live': 'polite' });
    const create = async (e) => {
      e.preventDefault();
      const doc = {
        format: 'sluice.flow', format_version: 1, name: name.value.trim(), entry: 'reply',
        nodes: { reply: { type: 'respond', status: 200, body: { ok: true } } },
      };
      if (endpoint) doc.endpoint = { method: method.value, path: path.value.trim() };
      try { close((await api('POST', '/flows', { body: doc })).body.id); } catch (err) { out.replaceChildren(errorBox(err)); }
    };
    return [h('form', { class: 'fl-form', onsubmit: create },
      h('div', { class: 'fl-form-row' }, h('label', { for: 'fl-new-name', text: 'Name' }), name),
      endpoint ? h('div', { class: 'fl-form-row' }, h('label', { for: 'fl-new-method', text: 'Method' }), method) : '',
      endpoint ? h('div', { class: 'fl-form-row' }, h('label', { for: 'fl-new-path', text: 'Path (under /api)' }), path) : '',
      out, h('div', { class: 'dialog-actions' }, h('button', { class: 'fl-btn fl-primary', type: 'submit', text: 'Create' })))];
  } });
  if (id) open(id);
}

/** @param {() => void} onDone what to do when endpoints were created */
async function crud(onDone) {
  let tables = [];
  try { tables = (await api('GET', '/tables')).body.tables; } catch (e) { return dialog({ title: 'CRUD endpoints', cls: 'fl-dialog', body: () => [errorBox(e)] }); }
  const done = await dialog({ title: 'CRUD endpoints from a table', cls: 'fl-dialog', body: (close) => {
    if (!tables.length) return [h('p', { text: 'There are no tables yet. Create one under Tables first.' }), h('a', { href: '#/tables', class: 'fl-btn', text: 'Go to tables', onclick: () => close(null) })];
    const table = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input', id: 'fl-crud-table' }, ...tables.map((t) => new Option(t.name, t.name))));
    const path = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', id: 'fl-crud-path', spellcheck: false }));
    const publish = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id: 'fl-crud-publish', checked: true }));
    const auth = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input', id: 'fl-crud-auth' },
      new Option('Signed-in users (user token)', 'user'), new Option('Admins (token with role admin)', 'admin'), new Option('Anyone (public)', 'public')));
    const authHint = h('p', { class: 'fl-hint' });
    // The server's default: admins for a table with a password field, signed-in users otherwise.
    const sync = () => {
      path.value = `/${table.value}`;
      const t = tables.find((x) => x.name === table.value);
      const accounts = !!(t && (t.fields || []).some((/** @type {any} */ f) => f.type === 'password'));
      auth.value = accounts ? 'admin' : 'user';
      authHint.textContent = accounts ? 'This table has a password field: only admin endpoints may write it.' : '';
    };
    table.addEventListener('change', sync);
    sync();
    const out = h('div', { 'aria-live': 'polite' });
    const go = async (e) => {
      e.preventDefault();
      const body = { path: path.value.trim(), publish: publish.checked, auth: auth.value };
      const url = `/tables/${encodeURIComponent(table.value)}/crud`;
      try {
        close((await api('POST', url, { body })).body.flows);
      } catch (err) {
        const e = /** @type {any} */ (err);
        if (e.code !== 'table.crud_exists') return out.replaceChildren(errorBox(err));
        // Regeneration: name the flows whose drafts it overwrites (and the live ones), then ask.
        const live = e.details.filter((/** @type {any} */ d) => d.published_version);
        const message = h('div', {},
          h('p', { text: 'These flows exist and their drafts will be replaced by freshly generated ones (their edits are lost):' }),
          h('ul', { id: 'fl-crud-overwrite' }, ...e.details.map((/** @type {any} */ d) => h('li', { text: d.published_version ? `${d.flow} (live v${d.published_version})` : d.flow }))),
          body.publish && live.length ? h('p', { text: `${live.length} of them are live and are republished at once.` }) : '');
        const ok = await confirmDialog({ title: 'Regenerate CRUD endpoints?', message, confirm: 'Replace and regenerate', danger: true });
        if (!ok) return;
        try {
          close((await api('POST', url, { body: { ...body, replace: true } })).body.flows);
          toast(`Regenerated the CRUD endpoints of ${table.value}`, 'success');
        } catch (again) { out.replaceChildren(errorBox(again)); }
      }
    };
    return [h('form', { class: 'fl-form', onsubmit: go },
      h('p', { class: 'fl-hint', text: 'Creates list, get, create, update and delete endpoints as ordinary flows you can edit.' }),
      h('div', { class: 'fl-form-row' }, h('label', { for: 'fl-crud-table', text: 'Table' }), table),
      h('div', { class: 'fl-form-row' }, h('label', { for: 'fl-crud-path', text: 'Path' }), path),
      h('div', { class: 'fl-form-row' }, h('label', { for: 'fl-crud-auth', text: 'Who may call them' }), auth),
      authHint,
      h('label', { class: 'fl-check' }, publish, ' Publish them now'),
      out, h('div', { class: 'dialog-actions' }, h('button', { class: 'fl-btn fl-primary', type: 'submit', text: 'Create endpoints' })))];
  } });
  if (done) onDone();
}

/** @param {any[]} flows the existing flows (a template's name gets a suffix when taken) */
async function fromTemplate(flows) {
  let templates = [];
  try { templates = (await api('GET', '/templates')).body.templates; } catch (e) { return dialog({ title: 'Templates', cls: 'fl-dialog', body: () => [errorBox(e)] }); }
  const id = await dialog({ title: 'Create from a template', cls: 'fl-dialog', body: (close) => {
    const out = h('div', { 'aria-live': 'polite' });
    const groups = new Map();
    for (const t of templates) { if (!groups.has(t.group)) groups.set(t.group, []); groups.get(t.group).push(t); }
    const use = async (t) => {
      const doc = structuredClone(t.document);
      const taken = new Set(flows.map((x) => x.name));
      let n = doc.name;
      for (let i = 2; taken.has(n); i++) n = `${doc.name}_${i}`;
      doc.name = n;
      try {
        // Tables the template reads are created first when this instance lacks them.
        const have = new Set(((await api('GET', '/tables')).body.tables || []).map((x) => x.name));
        for (const def of t.tables || []) {
          if (!have.has(def.name)) await api('POST', '/tables', { body: def });
        }
        close((await api('POST', '/flows', { body: doc })).body.id);
      } catch (err) { out.replaceChildren(errorBox(err)); }
    };
    return [h('p', { class: 'fl-hint', text: 'A template becomes an ordinary draft. Tables it uses are created when they do not exist yet.' }),
      ...[...groups].map(([g, ts]) => h('section', {}, h('h3', { text: g }), h('ul', { class: 'fl-rows' }, ...ts.map((t) => h('li', {},
        h('button', { class: 'fl-row', type: 'button', onclick: () => use(t) },
          h('span', { class: `fl-method fl-m-${(t.method || 'fn').toLowerCase()}`, title: t.method ? undefined : 'function' }, t.method || icon('function', { label: 'function', size: 14 })),
          h('span', { class: 'fl-row-path', text: t.path || t.name }),
          h('span', { class: 'fl-row-name', text: t.description || t.name }))))))),
      out];
  } });
  if (id) open(id);
}

/** @param {any[]} flows @param {string} text */
async function importFile(flows, text) {
  const id = await importDialog(text, flows);
  if (typeof id === 'number') open(id);
}
