// @ts-check
/**
 * The table designer: add, rename, retype and drop fields. Nothing is applied until the plan
 * (the exact SQL) has been previewed from `POST /tables/{name}/plan`; applying is a `PUT`
 * with the version edited (`If-Match`). A change that would break published endpoints is
 * refused by the server and shown with the endpoints it names, with the option to force it.
 *
 * Unsaved edits are kept like the flow screen keeps them: every change stashes the working
 * copy in sessionStorage (`sluice.table.unsaved.<name>`, with the version it started from);
 * mounting the designer again (a refresh, coming back) restores it with a notice, and says so
 * when the table changed on the server meanwhile. Leaving with unsaved edits asks first
 * (`beforeunload` for a refresh or close, the router's guard for a link or Back).
 */
import { api } from './api.js';
import { h, replace, icon, uid } from './dom.js';
import { dialog, toast, errorBox } from './ui.js';

export const FIELD_TYPES = ['text', 'integer', 'decimal', 'boolean', 'timestamp', 'date', 'uuid', 'json', 'enum', 'email', 'password', 'reference'];

/**
 * @typedef {{id?: string, name: string, type: string, required?: boolean, unique?: boolean, indexed?: boolean,
 *   default?: any, values?: string[], table?: string, on_delete?: string, description?: string,
 *   precision?: number, scale?: number}} Field
 */

/** Where a table's unsaved designer edits are kept. @param {string} name */
const stashKey = (name) => `sluice.table.unsaved.${name}`;

/**
 * The edits a previous visit left unsaved: `{version, fields}` (the working copy and the
 * version, ETag or number, it started from), or null.
 * @param {string} name
 * @returns {{version: string, fields: any[]} | null}
 */
function stashed(name) {
  try {
    const kept = JSON.parse(sessionStorage.getItem(stashKey(name)) || 'null');
    return kept && Array.isArray(kept.fields) ? kept : null;
  } catch {
    return null;
  }
}

/** @param {string} name */
function dropStash(name) {
  try { sessionStorage.removeItem(stashKey(name)); } catch { /* storage disabled */ }
}

/**
 * @param {HTMLElement} el
 * @param {any} ctx
 */
export async function mount(el, ctx) {
  const original = ctx.table;
  const version = String(ctx.etag || `"${original.version}"`);
  const tables = (await api('GET', '/tables')).body.tables.map((/** @type {any} */ t) => t.name);
  /** Working copy: fields with a `_dropped` mark and a `_key` for the DOM. */
  /** @type {(Field & {_key: string, _dropped?: boolean, _defaultText?: string})[]} */
  let fields = original.fields.map((/** @type {Field} */ f) => ({ ...f, _key: uid('fld'), _defaultText: defaultText(f) }));
  const rows = h('div', { class: 'fields', role: 'table', 'aria-label': 'Fields' });
  const problems = h('div');
  const notice = h('div', { id: 'designer-notice', 'aria-live': 'polite' });
  const review = h('button', { type: 'button', class: 'btn btn-primary', id: 'review-changes', title: 'Ctrl+S' }, 'Review changes');
  const reset = h('button', { type: 'button', class: 'btn' }, 'Discard');
  // Table setting: log every change for flows with a table trigger (docs/EVENTS.md).
  let events = !!original.events;
  const eventsBox = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id: 'table-events', checked: events }));
  eventsBox.addEventListener('change', () => { events = eventsBox.checked; changed(); });

  /** The saved form of each field, normalised like the working copy. */
  const savedForm = new Map(original.fields.map((/** @type {any} */ f) => [f.id, normal({ ...f, _defaultText: defaultText(f) })]));

  function state(/** @type {any} */ f) {
    if (f._dropped) return 'dropped';
    if (!f.id) return 'new';
    return normal(f) === savedForm.get(f.id) ? '' : 'changed';
  }

  /**
   * Redraws the rows; `focus` (`[field key, role]`) puts the focus back on that control of
   * that row (a redraw would otherwise drop it on the page).
   * @param {[string, string]} [focus]
   */
  function draw(focus) {
    const head = h('div', { class: 'field-row head', role: 'row' },
      h('span', { role: 'columnheader' }, h('span', { class: 'sr-only', text: 'Change' })), h('span', { role: 'columnheader', text: 'Name' }), h('span', { role: 'columnheader', text: 'Type' }),
      h('span', { role: 'columnheader', text: 'Options' }), h('span', { role: 'columnheader', text: 'Required' }), h('span', { role: 'columnheader', text: 'Unique' }),
      h('span', { role: 'columnheader', text: 'Default' }), h('span', { role: 'columnheader' }, h('span', { class: 'sr-only', text: 'Drop' })));
    const system = [['id', original.id_type || 'bigint'], ['created_at', 'timestamp'], ['updated_at', 'timestamp']].map(([n, t]) =>
      h('div', { class: 'field-row system', role: 'row' }, h('span', { class: 'dot', role: 'cell' }), h('span', { class: 'mono', role: 'cell', text: n }), h('span', { role: 'cell', text: t }),
        h('span', { class: 'hint', role: 'cell', text: 'set by Sluice' }), h('span', { role: 'cell' }), h('span', { role: 'cell' }), h('span', { role: 'cell' }), h('span', { role: 'cell' })));
    replace(rows, head, system, fields.map((f) => fieldRow(f, host)), fields.length ? null : h('div', { class: 'empty' }, h('p', { text: 'No fields yet. Add the first one.' })));
    changed();
    if (focus) {
      const target = /** @type {HTMLElement | null} */ (rows.querySelector(`[data-key="${focus[0]}"] [data-role="${focus[1]}"]`));
      (target || add).focus();
    }
  }

  /** Whether anything differs from the saved table. */
  const dirty = () => fields.some((f) => state(f) !== '') || events !== !!original.events;

  /** Review is possible once anything differs from the saved table; the edits are stashed. */
  function changed() {
    const d = dirty();
    if (d) review.removeAttribute('disabled'); else review.setAttribute('disabled', '');
    el.dataset.dirty = String(d);
    try {
      if (d) sessionStorage.setItem(stashKey(original.name), JSON.stringify({ version, fields }));
      else sessionStorage.removeItem(stashKey(original.name));
    } catch { /* storage full or disabled: nothing to keep */ }
  }

  /** @type {RowHost} */
  const host = {
    tables, state, draw, changed,
    drop: (f) => {
      if (!f.id) fields = fields.filter((x) => x !== f); else f._dropped = true;
      draw([f._key, 'keep']);
    },
  };

  const add = h('button', { type: 'button', class: 'btn', id: 'add-field', onclick: () => {
    fields.push({ name: '', type: 'text', _key: uid('fld') });
    draw();
    const inputs = rows.querySelectorAll('[data-role=name]');
    /** @type {HTMLInputElement} */ (inputs[inputs.length - 1])?.focus();
  } }, icon('plus'), 'Add field');

  /** Drops the edits and shows the saved table again. */
  const discard = () => {
    fields = [];
    dropStash(original.name);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  };
  reset.addEventListener('click', discard);

  review.addEventListener('click', async () => {
    replace(problems);
    const built = buildTable(original, fields);
    if ('error' in built) {
      replace(problems, errorBox({ message: built.error }));
      return;
    }
    const body = { table: { ...built.table, events }, confirm_drop: built.dropped };
    let plan;
    try {
      plan = (await api('POST', `/tables/${encodeURIComponent(original.name)}/plan`, { body })).body;
    } catch (e) {
      replace(problems, errorBox(e));
      return;
    }
    const applied = await previewAndApply(original, body, plan, ctx.etag);
    if (applied) {
      fields = [];
      dropStash(original.name);
      // Which endpoints the change rewrote (renames; generated CRUD following new fields).
      const rw = applied.rewritten || {}, list = (/** @type {any[]} */ l) => (l || []).map((f) => f.flow).join(', ');
      toast(`${original.name} updated.${rw.published?.length ? ` Rewritten and republished: ${list(rw.published)}.` : ''}${rw.drafts?.length ? ` Drafts rewritten: ${list(rw.drafts)}.` : ''}`, 'success');
      const newName = applied.table?.name || original.name;
      // Reload with the new version.
      ctx.navigate(`#/tables/${encodeURIComponent(newName)}/schema`);
      if (newName === original.name) window.dispatchEvent(new HashChangeEvent('hashchange'));
    }
  });

  /** Ctrl/Cmd+S: review the changes (nothing is applied without the preview). */
  const onKey = (/** @type {KeyboardEvent} */ ev) => {
    if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === 's' && !document.querySelector('dialog[open]')) {
      ev.preventDefault();
      if (!review.hasAttribute('disabled')) review.click();
    }
  };
  document.addEventListener('keydown', onKey);
  /** @param {BeforeUnloadEvent} e */
  const onUnload = (e) => { if (el.isConnected && dirty()) { e.preventDefault(); e.returnValue = ''; } };
  window.addEventListener('beforeunload', onUnload);
  ctx.guard?.(() => (dirty()
    ? `The fields of ${original.name} have changes that are not applied. They stay in this browser tab and are offered again when you come back. Leave anyway?`
    : null));

  // Edits a previous visit left (a refresh, a link away and back) come back, with a notice.
  const kept = stashed(original.name);
  if (kept) {
    const restored = rebase(kept.fields, original);
    if (restored.some((f) => state(f) !== '')) {
      fields = restored;
      const elsewhere = kept.version !== version;
      replace(notice, h('div', { class: `notice designer-restored${elsewhere ? ' warn' : ''}`, role: 'status' },
        h('span', { text: elsewhere
          ? `Unsaved changes restored. ${original.name} was changed elsewhere since you made them: review them against the current table, or discard them.`
          : 'Unsaved changes restored.' }),
        ' ',
        elsewhere ? h('button', { type: 'button', class: 'btn btn-sm', id: 'keep-restored', onclick: () => { replace(notice); review.focus(); } }, 'Keep them') : null,
        h('button', { type: 'button', class: 'btn btn-sm', id: 'discard-restored', onclick: discard }, 'Discard')));
    } else {
      dropStash(original.name);
    }
  }

  replace(el,
    notice,
    h('section', { class: 'panel' },
      h('div', { class: 'panel-head' },
        h('div', null, h('h2', { text: 'Fields' }), h('p', { class: 'hint', text: 'Changes are previewed as SQL before anything is applied. Renames keep data.' })),
        add),
      rows,
      h('div', { class: 'designer-settings' },
        h('label', { class: 'check', title: 'Every insert, update and delete runs the flows with a table trigger on this table' }, eventsBox, 'Send change events')),
      h('div', { class: 'designer-actions' }, h('div', null, problems), h('div', { class: 'page-actions' }, reset, review))));
  draw();
  return () => {
    document.removeEventListener('keydown', onKey);
    window.removeEventListener('beforeunload', onUnload);
  };
}

/**
 * A stashed working copy made to fit the table as it is now: a field that was since dropped
 * on the server leaves the copy; a field added on the server meanwhile joins it unchanged,
 * before the copy's new fields.
 * @param {any[]} kept @param {any} original
 * @returns {any[]}
 */
function rebase(kept, original) {
  const now = new Set(original.fields.map((/** @type {any} */ f) => f.id));
  const valid = kept.filter((f) => f && typeof f === 'object');
  const existing = valid.filter((f) => f.id && now.has(f.id));
  const seen = new Set(existing.map((f) => f.id));
  const added = original.fields.filter((/** @type {any} */ f) => !seen.has(f.id)).map((/** @type {any} */ f) => ({ ...f, _defaultText: defaultText(f) }));
  return [...existing, ...added, ...valid.filter((f) => !f.id)].map((f) => ({ ...f, _key: uid('fld') }));
}

/**
 * What a field row needs from the designer.
 * @typedef {{tables: string[], state: (f: any) => string, draw: (focus?: [string, string]) => void, changed: () => void, drop: (f: any) => void}} RowHost
 */

/**
 * One editable field row of the working copy.
 * @param {any} f the field (changed in place)
 * @param {RowHost} host
 */
function fieldRow(f, host) {
  const { tables, draw } = host;
  const st = host.state(f);
  const name = h('input', { type: 'text', value: f.name, 'aria-label': `Name of ${f.name || 'new field'}`, class: 'mono', spellcheck: 'false', autocomplete: 'off', dataset: { role: 'name' }, disabled: !!f._dropped });
  name.addEventListener('input', () => { f.name = /** @type {HTMLInputElement} */ (name).value.trim(); mark(); });
  const type = h('select', { 'aria-label': `Type of ${f.name || 'new field'}`, dataset: { role: 'type' }, disabled: !!f._dropped },
    FIELD_TYPES.map((t) => h('option', { value: t, text: t })));
  /** @type {HTMLSelectElement} */ (type).value = f.type;
  type.addEventListener('change', () => { f.type = /** @type {HTMLSelectElement} */ (type).value; if (f.type !== 'enum') delete f.values; if (f.type !== 'reference') { delete f.table; delete f.on_delete; } draw([f._key, 'type']); });
  /** @type {HTMLElement} */
  let options = h('span', { class: 'hint', text: '—' });
  if (f.type === 'enum') {
    options = h('input', { type: 'text', value: (f.values || []).join(', '), placeholder: 'draft, sent, paid', 'aria-label': 'Allowed values, comma-separated', disabled: !!f._dropped });
    options.addEventListener('input', () => { f.values = /** @type {HTMLInputElement} */ (options).value.split(',').map((s) => s.trim()).filter(Boolean); mark(); });
  } else if (f.type === 'reference') {
    const target = h('select', { 'aria-label': 'Referenced table', disabled: !!f._dropped }, h('option', { value: '', text: 'table…' }), tables.map((/** @type {string} */ t) => h('option', { value: t, text: t })));
    /** @type {HTMLSelectElement} */ (target).value = f.table || '';
    target.addEventListener('change', () => { f.table = /** @type {HTMLSelectElement} */ (target).value || undefined; mark(); });
    const onDelete = h('select', { 'aria-label': 'When the referenced row is deleted', title: 'When the referenced row is deleted', disabled: !!f._dropped },
      h('option', { value: 'restrict', text: 'refuse delete' }), h('option', { value: 'cascade', text: 'delete too' }), h('option', { value: 'set_null', text: 'set empty' }));
    /** @type {HTMLSelectElement} */ (onDelete).value = f.on_delete || 'restrict';
    onDelete.addEventListener('change', () => {
      const v = /** @type {HTMLSelectElement} */ (onDelete).value;
      if (v === 'restrict') delete f.on_delete; else f.on_delete = v;
      mark();
    });
    options = h('span', { class: 'option-pair' }, target, onDelete);
  } else if (f.type !== 'password') {
    const indexed = h('input', { type: 'checkbox', checked: !!f.indexed, disabled: !!f._dropped });
    indexed.addEventListener('change', () => { f.indexed = /** @type {HTMLInputElement} */ (indexed).checked; mark(); });
    options = h('label', { class: 'check', title: 'Adds an index: faster filters and sorting on this field' }, indexed, 'indexed');
  }
  const required = h('input', { type: 'checkbox', checked: !!f.required, 'aria-label': `${f.name || 'New field'} is required`, disabled: !!f._dropped });
  required.addEventListener('change', () => { f.required = /** @type {HTMLInputElement} */ (required).checked; mark(); });
  const unique = h('input', { type: 'checkbox', checked: !!f.unique, 'aria-label': `${f.name || 'New field'} is unique`, disabled: !!f._dropped || f.type === 'password' || f.type === 'json' });
  unique.addEventListener('change', () => { f.unique = /** @type {HTMLInputElement} */ (unique).checked; mark(); });
  const dflt = h('input', { type: 'text', value: f._defaultText || '', placeholder: 'none', 'aria-label': `Default of ${f.name || 'new field'}`, style: null, disabled: !!f._dropped || f.type === 'password' || f.type === 'reference' });
  dflt.addEventListener('input', () => { f._defaultText = /** @type {HTMLInputElement} */ (dflt).value; mark(); });
  const drop = f._dropped
    ? h('button', { type: 'button', class: 'btn-icon', 'aria-label': `Keep ${f.name}`, title: 'Keep', dataset: { role: 'keep' }, onclick: () => { f._dropped = false; draw([f._key, 'drop']); } }, icon('undo'))
    : h('button', { type: 'button', class: 'btn-icon', 'aria-label': `Drop ${f.name || 'new field'}`, title: 'Drop', dataset: { role: 'drop' }, onclick: () => host.drop(f) }, icon('trash'));
  const r = h('div', { class: `field-row ${st}`, role: 'row', dataset: { field: f.name, key: f._key } },
    h('span', { class: 'dot', title: st || 'unchanged', role: 'cell' }), [name, type, options, required, unique, dflt, drop].map((c) => h('span', { class: 'cell', role: 'cell' }, c)));
  function mark() {
    r.className = `field-row ${host.state(f)}`;
    host.changed();
  }
  return r;
}

/**
 * The new definition from the working copy, or a message of what is wrong.
 * @param {any} original the table as loaded @param {any[]} fields the working copy
 * @returns {{table: any, dropped: string[]} | {error: string}}
 */
function buildTable(original, fields) {
  const byId = new Map(original.fields.map((/** @type {Field} */ f) => [f.id, f]));
  const out = [];
  for (const f of fields) {
    if (f._dropped) continue;
    if (!/^[a-z][a-z0-9_]{0,62}$/.test(f.name)) return { error: `“${f.name || '(empty)'}” is not a valid field name: lowercase letters, digits and _, starting with a letter.` };
    const c = clean(f);
    if (f._defaultText !== undefined && f._defaultText !== '') {
      const v = parseDefault(f.type, f._defaultText);
      if (v === undefined) return { error: `The default of ${f.name} is not a ${f.type}.` };
      c.default = v;
    } else {
      delete c.default;
    }
    out.push(c);
  }
  const dropped = fields.filter((f) => f._dropped && f.id).map((f) => byId.get(f.id)?.name || f.name);
  const { fields: _old, ...rest } = original;
  return { table: { ...rest, fields: out }, dropped };
}

/** A default as the designer shows it. */
function defaultText(/** @type {any} */ f) {
  if (f.default === undefined || f.default === null) return '';
  return typeof f.default === 'string' ? f.default : JSON.stringify(f.default);
}

/** A field as comparable text: cleaned, keys sorted. */
function normal(/** @type {any} */ f) {
  const c = clean(f);
  return JSON.stringify(Object.keys(c).sort().map((k) => [k, c[k]]));
}

/** A field without the editor's working marks and empty options. */
function clean(/** @type {any} */ f) {
  /** @type {any} */
  const c = {};
  for (const [k, v] of Object.entries(f)) {
    if (k.startsWith('_') || v === undefined) continue;
    if ((k === 'required' || k === 'unique' || k === 'indexed') && v === false) continue;
    if (k === 'on_delete' && v === 'restrict') continue;
    c[k] = v;
  }
  if (f._defaultText !== undefined && f._defaultText !== '') {
    const v = parseDefault(f.type, f._defaultText);
    if (v !== undefined) c.default = v;
  } else {
    delete c.default;
  }
  return c;
}

/** A default typed in the designer, as the JSON literal of the field's type. */
function parseDefault(/** @type {string} */ type, /** @type {string} */ text) {
  const t = text.trim();
  switch (type) {
    case 'integer': return /^-?\d+$/.test(t) ? Number(t) : undefined;
    case 'decimal': return /^-?\d+(\.\d+)?$/.test(t) ? (Number.isSafeInteger(Math.trunc(Number(t))) && t.length < 16 ? Number(t) : t) : undefined;
    case 'boolean': return t === 'true' ? true : t === 'false' ? false : undefined;
    case 'json': try { return JSON.parse(t); } catch { return undefined; }
    default: return text;
  }
}

/**
 * Shows the plan (each step's summary and SQL, and the access rules it changes) and applies it
 * on request. Resolves the PUT's answer when applied, else undefined. The Rules tab
 * (`rules.js`) applies its changes through it too.
 * @param {any} original
 * @param {any} body
 * @param {any} plan
 * @param {string | null} etag
 */
export function previewAndApply(original, body, plan, etag) {
  return dialog({
    title: `Review changes to ${original.name}`,
    wide: true,
    body: (close) => {
      const problems = h('div');
      const steps = plan.plan?.steps || plan.steps || [];
      const ruled = (plan.plan?.changes || plan.changes || []).filter((/** @type {any} */ c) => c.kind === 'rules').flatMap((/** @type {any} */ c) => c.actions || []);
      const breaks = plan.breaks || [];
      const apply = h('button', { type: 'button', class: 'btn btn-primary', id: 'apply-changes' }, 'Apply changes');
      const force = h('button', { type: 'button', class: 'btn btn-danger', id: 'force-apply', hidden: true }, 'Apply anyway');
      const preview = breaks.length ? breaksBox(breaks, 'This change would break published endpoints:') : null;
      const rewrite = h('input', { type: 'checkbox', id: 'update-flows' });
      const draftBreaks = plan.draft_breaks || [];
      /** @type {HTMLInputElement} */ (rewrite).checked = !breaks.length && draftBreaks.length > 0;
      const drafts = draftBreaks.length ? h('p', { class: 'hint', id: 'draft-breaks', text: `Drafts (not live) this change breaks: ${[...new Set(draftBreaks.map((/** @type {any} */ b) => b.flow))].join(', ')}` }) : null;
      const rewriteLabel = breaks.length || draftBreaks.length
        ? h('label', { class: 'check' }, rewrite, 'Rewrite those endpoints and drafts for renamed tables and fields (works for renames, not drops)')
        : null;
      const put = async (/** @type {boolean} */ forced) => {
        apply.setAttribute('disabled', '');
        try {
          const res = await api('PUT', `/tables/${encodeURIComponent(original.name)}`, {
            body: { ...body, force: forced, update_flows: /** @type {HTMLInputElement} */ (rewrite).checked },
            ifMatch: etag || `"${original.version}"`,
          });
          close(res.body);
        } catch (e) {
          const err = /** @type {any} */ (e);
          if (err.code === 'table.breaks_flows') preview?.remove();
          replace(problems, err.code === 'table.breaks_flows' ? breaksBox(err.details, 'Not applied: this change would break published endpoints.') : errorBox(err));
          if (err.code === 'table.breaks_flows') force.hidden = false;
          apply.removeAttribute('disabled');
        }
      };
      apply.addEventListener('click', () => put(false));
      force.addEventListener('click', () => put(true));
      return [
        h('div', { class: 'plan', id: 'plan-preview' },
          steps.length
            ? steps.map((/** @type {any} */ s, /** @type {number} */ i) => h('div', { class: 'plan-step' },
                h('div', { class: 'summary', text: `${i + 1}. ${s.summary}` }),
                h('pre', { text: s.sql })))
            : h('p', { class: 'plan-empty', text: 'Nothing to change in the database.' }),
          ruled.length ? h('p', { class: 'plan-rules', id: 'plan-rules', text: `Access rules change: ${ruled.join(', ')}. Flows apply them from the next request on (no SQL).` }) : null),
        preview,
        drafts,
        rewriteLabel,
        problems,
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Back to editing'),
          force, apply),
      ];
    },
  });
}

/** The endpoints a change would break, as the server named them. */
export function breaksBox(/** @type {any[]} */ breaks, /** @type {string} */ message) {
  return h('div', { class: 'breaks', role: 'alert', id: 'breaks' },
    h('strong', { text: message }),
    h('ul', null, (breaks || []).map((b) => h('li', null,
      h('a', { href: `#/flows/${b.flow_id}`, text: b.flow }), b.node ? ` (node ${b.node})` : '', b.reason ? `: ${b.reason}` : ''))),
    h('p', { class: 'hint', text: 'Fix those endpoints first, or apply anyway: broken endpoints stop being served until fixed.' }));
}
