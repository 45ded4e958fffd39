// @ts-check
/**
 * One table: its data grid (`#/tables/{name}`), its designer (`#/tables/{name}/schema`), its
 * access rules (`#/tables/{name}/rules`, `rules.js`) and its history.
 */
import { api } from './api.js';
import { h, replace, icon } from './dom.js';
import { confirmDialog, toast, dialog, errorBox } from './ui.js';

/**
 * @param {HTMLElement} el
 * @param {any} ctx
 */
export async function mount(el, ctx) {
  const [name, tab = 'data'] = ctx.params;
  const res = await api('GET', `/tables/${encodeURIComponent(name)}`);
  const def = res.body;
  const body = h('div');
  const tabs = [
    ['data', 'Data', `#/tables/${encodeURIComponent(name)}`],
    ['schema', 'Schema', `#/tables/${encodeURIComponent(name)}/schema`],
    ['rules', 'Rules', `#/tables/${encodeURIComponent(name)}/rules`],
    ['history', 'History', `#/tables/${encodeURIComponent(name)}/history`],
  ];
  replace(el,
    h('div', { class: 'crumbs' }, h('a', { href: '#/tables', text: 'Tables' }), ' / '),
    h('div', { class: 'page-head' },
      h('div', null,
        h('h1', { class: 'mono', text: def.name }),
        h('p', { class: 'sub', text: def.description || `${def.fields.length} field${def.fields.length === 1 ? '' : 's'} · version ${def.version}` })),
      h('div', { class: 'page-actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => generateCrud(def, ctx) }, icon('flow'), 'Create endpoints'),
        h('button', { type: 'button', class: 'btn btn-ghost', 'aria-label': `Delete table ${def.name}`, onclick: () => dropTable(def, ctx) }, icon('trash')))),
    h('div', { class: 'tabs', role: 'tablist' }, tabs.map(([key, label, href]) =>
      h('a', { class: 'tab', role: 'tab', href, 'aria-selected': String(key === tab), id: `tab-${key}` }, label))),
    body);
  if (tab === 'history') return history(body, def);
  const mod = tab === 'schema' ? await import('./designer.js') : tab === 'rules' ? await import('./rules.js') : await import('./grid.js');
  return mod.mount(body, { ...ctx, table: def, etag: res.etag });
}

/** Every applied schema change, newest first, with its SQL. */
async function history(/** @type {HTMLElement} */ body, /** @type {any} */ def) {
  const res = await api('GET', `/tables/${encodeURIComponent(def.name)}/history`);
  const entries = res.body.history || [];
  replace(body, h('section', { class: 'panel', 'aria-label': 'Schema history' },
    entries.length
      ? h('ol', { class: 'list history', id: 'history' }, entries.map((/** @type {any} */ e) => {
          const steps = e.plan?.steps || [];
          return h('li', null,
            h('div', { class: 'grow' },
              h('div', null, h('strong', { text: steps.map((/** @type {any} */ s) => s.summary).join('; ') || 'No database change' })),
              h('div', { class: 'hint', text: `${new Date(e.applied_at).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })}${e.user ? ` · ${e.user}` : ''}` }),
              steps.length
                ? h('details', null, h('summary', { text: `SQL (${steps.length} statement${steps.length === 1 ? '' : 's'})` }),
                    h('pre', { class: 'sql', text: steps.map((/** @type {any} */ s) => `${s.sql};`).join('\n') }))
                : null));
        }))
      : h('div', { class: 'empty' }, h('p', { text: 'No changes recorded yet.' }))));
}

async function generateCrud(/** @type {any} */ def, /** @type {any} */ ctx) {
  const path = h('input', { type: 'text', name: 'crud_path', value: `/${def.name}` });
  const publish = h('input', { type: 'checkbox', name: 'crud_publish' });
  // The server's default: admins for a table with a password field, signed-in users otherwise.
  const accounts = (def.fields || []).some((/** @type {any} */ f) => f.type === 'password');
  const auth = h('select', { name: 'crud_auth', id: 'crud-auth' },
    h('option', { value: 'user', text: 'Signed-in users (user token)' }),
    h('option', { value: 'admin', text: 'Admins (token with role admin)' }),
    h('option', { value: 'public', text: 'Anyone (public)' }));
  /** @type {HTMLSelectElement} */ (auth).value = accounts ? 'admin' : 'user';
  // The server writes owner-only rules for signed-in users' endpoints on a table with a
  // users-linked `owner` and no rules yet (RULES.md, "Owner-only by default").
  const ownerLinked = !def.rules && (def.fields || []).some((/** @type {any} */ f) => f.name === 'owner' && f.type === 'reference' && f.table === 'users');
  const ownerRules = h('input', { type: 'checkbox', name: 'crud_owner_rules', id: 'crud-owner-rules', checked: true });
  const ownerRow = ownerLinked
    ? h('label', { class: 'check', title: 'Each signed-in user lists, gets, changes and deletes only the rows whose owner they are; a new row is theirs' }, ownerRules, 'Add owner-only access rules to the table (owner = the caller)')
    : null;
  const syncOwner = () => { if (ownerRow) ownerRow.hidden = /** @type {HTMLSelectElement} */ (auth).value !== 'user'; };
  auth.addEventListener('change', syncOwner);
  syncOwner();
  const problems = h('div');
  const done = await dialog({
    title: `Create endpoints for ${def.name}`,
    body: (close) => {
      const form = h('form', { novalidate: true },
        h('p', { class: 'hint', text: 'Five editable endpoints: list, get, create, update and delete rows.' }),
        h('div', { class: 'field' }, h('label', { for: 'crud-path', text: 'Path' }), Object.assign(path, { id: 'crud-path' })),
        h('div', { class: 'field' }, h('label', { for: 'crud-auth', text: 'Who may call them' }), auth),
        accounts ? h('p', { class: 'hint', text: 'This table has a password field: only admin endpoints may write it.' }) : null,
        h('label', { class: 'check' }, publish, 'Publish them now (otherwise they are drafts)'),
        ownerRow,
        problems,
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'),
          h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create endpoints')));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        try {
          const res = await api('POST', `/tables/${encodeURIComponent(def.name)}/crud`, {
            body: { path: /** @type {HTMLInputElement} */ (path).value.trim(), publish: /** @type {HTMLInputElement} */ (publish).checked, auth: /** @type {HTMLSelectElement} */ (auth).value, owner_rules: ownerLinked ? /** @type {HTMLInputElement} */ (ownerRules).checked : undefined },
          });
          if (res.body.owner_rules_written) toast(`Owner-only access rules added to ${def.name}.`, 'success');
          close(res.body.flows || []);
        } catch (e) {
          replace(problems, errorBox(e));
        }
      });
      return form;
    },
  });
  if (done) {
    toast(`${done.length} endpoints created.`, 'success');
    ctx.navigate('#/flows');
  }
}

async function dropTable(/** @type {any} */ def, /** @type {any} */ ctx) {
  const ok = await confirmDialog({
    title: `Delete table ${def.name}?`,
    message: 'The table and all its rows are deleted. This cannot be undone.',
    confirm: 'Delete table',
    danger: true,
  });
  if (!ok) return;
  try {
    await api('DELETE', `/tables/${encodeURIComponent(def.name)}?confirm=${encodeURIComponent(def.name)}`);
    toast(`Table ${def.name} deleted.`, 'success');
    ctx.navigate('#/tables');
  } catch (e) {
    const err = /** @type {any} */ (e);
    if (err.code === 'table.breaks_flows') {
      const force = await confirmDialog({
        title: 'Published endpoints use this table',
        message: h('div', null, errorBox(err), h('p', { text: 'Delete anyway? Those endpoints stop being served until fixed.' })),
        confirm: 'Delete anyway',
        danger: true,
      });
      if (force) {
        try {
          await api('DELETE', `/tables/${encodeURIComponent(def.name)}?confirm=${encodeURIComponent(def.name)}&force=true`);
          toast(`Table ${def.name} deleted.`, 'success');
          ctx.navigate('#/tables');
        } catch (e2) {
          toast(/** @type {any} */ (e2).message, 'error');
        }
      }
    } else {
      toast(err.message, 'error');
    }
  }
}
