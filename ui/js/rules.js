// @ts-check
/**
 * The Rules tab of a table (`#/tables/{name}/rules`): the table's access rules (docs/RULES.md)
 * edited with forms instead of JSON. At the top "who can do what" in plain words, then one
 * section per action (list, view, create, update, delete) with its rule's form or "no rule",
 * then the published endpoints whose nodes read or write the table.
 *
 * A condition is edited with the filter builder of the flow inspector (`conditionBuilder`),
 * given a value control of its own (a literal typed by the field, the caller's id, a claim of
 * the caller, and inside an `exists` a field of the checked row) and the `exists` form. Every
 * rule also has the JSON toggle, for shapes the forms cannot show.
 *
 * Saving goes the designer's way (`previewAndApply` of `designer.js`): `POST /tables/{name}/plan`
 * first, its review dialog, then `PUT` with the version the tab was loaded at. Problems the
 * server finds in a rule (422 `table.invalid`, pointers `/table/rules/<action>/...`) are shown
 * under that action's form; published endpoints that cannot apply the rules are listed beside
 * the save button. Pure parts (words, shapes, which nodes use the table) are in `rules/words.js`.
 */
import { api } from './api.js';
import { h, replace, icon, uid } from './dom.js';
import { errorBox, toast } from './ui.js';
import { previewAndApply, breaksBox } from './designer.js';
import { withJson } from './flows/forms/advanced.js';
import { conditionBuilder } from './flows/forms/filter.js';
import { columnsOf } from './flows/forms/names.js';
import { literalFits, literalInput } from './flows/forms/source.js';
import {
  ACTIONS, CLAIM, ROW_OPS, callers, isAuth, isExists, isRow, ownerCondition, ownerField, ruleProblem,
  summaryLines, tableUses,
} from './rules/words.js';

/** @typedef {import('./flows/forms/names.js').Column} Column */

const TITLES = /** @type {Record<string, [string, string]>} */ ({
  list: ['List rows', 'The rows a db.query returns: lists, counts and pages.'],
  view: ['View a row', 'The row a db.get finds by its id.'],
  create: ['Create rows', 'What a db.insert writes: fields the rule sets, and a check on the new row.'],
  update: ['Update rows', 'The rows a db.update may change (judged before the change), the fields callers may change, and a check on the changed row.'],
  delete: ['Delete rows', 'The rows a db.delete may delete.'],
});

const NO_RULE = /** @type {Record<string, string>} */ ({
  list: 'No rule: anyone who may call the endpoint lists every row.',
  view: 'No rule: anyone who may call the endpoint views any row.',
  create: 'No rule: anyone who may call the endpoint creates rows with the values the flow gives.',
  update: 'No rule: anyone who may call the endpoint updates any row, every field.',
  delete: 'No rule: anyone who may call the endpoint deletes any row.',
});

/** @param {any} v */
const isObj = (v) => !!v && typeof v === 'object' && !Array.isArray(v);

/** JSON with sorted keys, to compare rules. @param {any} v @returns {string} */
const stable = (v) => JSON.stringify(v, (_k, x) => (isObj(x) ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]])) : x));

/**
 * The rules as they are saved: empty `set` left out, a create rule that sets and checks
 * nothing dropped, no `rules` at all when no action has one.
 * @param {any} work @returns {any}
 */
function cleaned(work) {
  /** @type {any} */
  const out = {};
  for (const a of ACTIONS) {
    const r = work[a];
    if (r === undefined) continue;
    if (a === 'create' && isObj(r)) {
      const c = { ...r };
      if (isObj(c.set) && !Object.keys(c.set).length) delete c.set;
      if (c.set === undefined && c.check === undefined && Object.keys(c).length === 0) continue;
      out.create = c;
    } else {
      out[a] = r;
    }
  }
  return Object.keys(out).length ? out : undefined;
}

/** A literal a value of `column` starts with. @param {Column} column */
function startingLiteral(column) {
  switch (column.type) {
    case 'boolean': return false;
    case 'integer': case 'decimal': return 0;
    case 'enum': return (column.values || [])[0] ?? '';
    case 'list': return [];
    default: return '';
  }
}

/**
 * @param {HTMLElement} el
 * @param {any} ctx
 */
export async function mount(el, ctx) {
  const def = ctx.table;
  const name = def.name;
  const tables = (await api('GET', '/tables')).body.tables || [];
  /** The columns of a table as the condition forms offer them (no password fields). @param {string} t */
  const colsOf = (t) => (columnsOf(tables, t) || (t === name ? columnsOf([def], name) : null) || []).filter((c) => c.type !== 'password');
  const cols = colsOf(name);
  const userFields = (def.fields || []).filter((/** @type {any} */ f) => f.type !== 'password');
  const saved = cleaned(isObj(def.rules) ? structuredClone(def.rules) : {});
  /** The working copy: one entry per action with a rule. @type {any} */
  let work = structuredClone(saved || {});
  let owner = ownerField(def) || '';
  let leaving = false;

  const summary = h('ul', { class: 'rules-summary', id: 'rules-summary', 'aria-live': 'polite' });
  const problems = h('div', { id: 'rules-problems' });
  const review = h('button', { type: 'button', class: 'btn btn-primary', id: 'rules-review' }, 'Review changes');
  const discard = h('button', { type: 'button', class: 'btn', id: 'rules-discard' }, 'Discard');
  /** @type {Record<string, {el: HTMLElement, problems: HTMLElement}>} */
  const sections = {};

  const dirty = () => stable(cleaned(work)) !== stable(saved);

  /** After every edit: the summary and the save buttons follow. */
  function changed() {
    replace(summary, summaryLines(cleaned(work)).map((line) => h('li', { text: line })));
    const d = dirty();
    for (const b of [review, discard]) {
      if (d) b.removeAttribute('disabled'); else b.setAttribute('disabled', '');
    }
    el.dataset.dirty = String(d);
  }

  /** The value of a condition: a literal, the caller's id or claim, a field of the checked row. */
  const keeps = (/** @type {any} */ v, /** @type {string} */ op) => (isAuth(v) && op !== 'is_null') || (isRow(v) && ROW_OPS.includes(op));

  /**
   * The hooks that make the flow filter builder a rule condition form. `inside`: the builder
   * of an exists, whose values may name a field of the checked row and which holds no exists.
   * @param {boolean} inside @returns {import('./flows/forms/filter.js').BuilderHooks}
   */
  const hooks = (inside) => ({
    keeps,
    value: (o) => ruleValue({ ...o, rowCols: inside ? cols : null }),
    leaf: inside ? undefined : existsLeaf,
    adds: inside ? undefined : (push, key) => [h('button', {
      type: 'button', class: 'fl-btn fm-add', text: '+ Exists in a table', dataset: { fkey: `${key}.adde`, role: 'add-exists' },
      title: 'A row of another table must exist, e.g. the caller is a member of the row\u2019s team',
      onclick: () => {
        const other = tables.find((/** @type {any} */ t) => t.name === 'members') || tables.find((/** @type {any} */ t) => t.name !== name) || def;
        push({ exists: { table: other.name, where: { and: [] } } }, 'table');
      },
    })],
    prefix: inside ? `${uid('ex').replace(/[^a-z0-9]/g, '')}-` : undefined,
    rootLabel: inside ? 'Its rows match' : 'Rows match',
  });

  /**
   * A condition form over the ruled table.
   * @param {string} label @param {any} value @param {(v: any) => void} set
   */
  const conditionForm = (label, value, set) => conditionBuilder(label, cols, value, set, undefined, hooks(false));

  /**
   * `{"exists": {"table", "where"}}` as a form: the table, then conditions on its fields.
   * @param {any} node @param {string} key @param {() => void} remove @param {() => void} write
   */
  function existsLeaf(node, key, remove, write) {
    if (!isExists(node)) return null;
    const e = node.exists;
    const table = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input rule-exists-table', 'aria-label': 'Exists: table', dataset: { fkey: `${key}.table` } }));
    for (const t of tables) table.append(new Option(t.name, t.name));
    if (!tables.some((/** @type {any} */ t) => t.name === e.table)) table.append(new Option(`${e.table} (not a table)`, e.table));
    table.value = e.table;
    const inner = h('div', { class: 'rule-exists-where' });
    const drawInner = () => replace(inner, conditionBuilder(`A row of ${e.table}`, colsOf(e.table), e.where,
      (v) => { e.where = v === undefined ? { and: [] } : v; write(); }, undefined, hooks(true)));
    table.addEventListener('change', () => {
      e.table = table.value;
      e.where = { and: [] };
      write();
      drawInner();
    });
    drawInner();
    return h('div', { class: 'fm-cond rule-exists', dataset: { table: e.table } },
      h('div', { class: 'rule-exists-head' },
        h('span', { class: 'fm-muted', text: 'A row of' }), table, h('span', { class: 'fm-muted', text: 'exists where' }),
        h('button', { type: 'button', class: 'fl-btn fm-remove', text: '\u2715', 'aria-label': `Remove the exists in ${e.table}`, onclick: remove })),
      inner);
  }

  /**
   * The value control of a rule condition (and of a create rule's `set`): a literal typed by
   * the field, the caller's id, a claim of the caller, or (`rowCols`, inside an exists) a field
   * of the checked row.
   * @param {{label: string, value: any, column: Column, op: string, set: (v: any) => void, rowCols?: Column[] | null}} o
   */
  function ruleValue(o) {
    const modes = [['literal', 'a value']];
    if (o.op !== 'is_null') modes.push(['id', 'the caller\u2019s id'], ['claim', 'the caller\u2019s claim']);
    if (o.rowCols && ROW_OPS.includes(o.op)) modes.push(['row', 'this row\u2019s field']);
    let value = o.value;
    const modeOf = (/** @type {any} */ v) => (isAuth(v) ? (v.auth === 'id' ? 'id' : 'claim') : isRow(v) ? 'row' : 'literal');
    const mode = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-mode rule-mode', 'aria-label': `${o.label}: value from` }));
    for (const [k, t] of modes) mode.append(new Option(t, k));
    const body = h('div', { class: 'fm-source-body' });
    const wrap = h('div', { class: 'fm-source rule-value' }, mode, body);
    const put = (/** @type {any} */ v) => { value = v; o.set(v); };
    const draw = () => {
      const m = modeOf(value);
      mode.value = m;
      wrap.dataset.mode = m;
      if (m === 'literal') {
        body.replaceChildren(literalInput(o.column, value, put, o.label));
      } else if (m === 'claim') {
        const inp = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input rule-claim', value: value.auth.slice(7), placeholder: 'role', 'aria-label': `${o.label}: claim name`, spellcheck: 'false' }));
        inp.addEventListener('input', () => {
          const ok = CLAIM.test(inp.value.trim());
          inp.setAttribute('aria-invalid', String(!ok));
          if (ok) put({ auth: `claims.${inp.value.trim()}` });
        });
        body.replaceChildren(inp);
      } else if (m === 'row') {
        const sel = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input rule-row-field', 'aria-label': `${o.label}: field of this row` }));
        for (const c of o.rowCols || []) sel.append(new Option(`${c.name} (${c.type})`, c.name));
        if (!(o.rowCols || []).some((c) => c.name === value.row)) sel.append(new Option(`${value.row} (not a field)`, value.row));
        sel.value = value.row;
        sel.addEventListener('change', () => put({ row: sel.value }));
        body.replaceChildren(sel);
      } else {
        body.replaceChildren();
      }
    };
    mode.addEventListener('change', () => {
      const rows = o.rowCols || [];
      switch (mode.value) {
        case 'id': put({ auth: 'id' }); break;
        case 'claim': put({ auth: 'claims.role' }); break;
        case 'row': put({ row: (rows.find((c) => c.name === o.column.name) || rows.find((c) => c.type === o.column.type) || rows[0])?.name || 'id' }); break;
        default: put(literalFits(value, o.column) ? value : startingLiteral(o.column));
      }
      draw();
    });
    // A literal that does not fit the field's type is kept as it is until edited (the server says why).
    draw();
    return wrap;
  }

  /**
   * The optional check of an update or create rule: "+ Check …" until there is one, then its
   * condition form and a button to remove it.
   * @param {any} rule @param {() => void} write @param {string} action
   */
  function checkPart(rule, write, action) {
    const box = h('div', { class: 'rule-check' });
    const what = action === 'create' ? 'the new row' : 'the row after the change';
    let open = rule.check !== undefined;
    const draw = () => {
      if (!open) {
        replace(box, h('button', { type: 'button', class: 'btn btn-sm', dataset: { role: 'add-check' }, onclick: () => { open = true; draw(); box.querySelector('button')?.focus(); } }, icon('plus'), `Check ${what}`));
        return;
      }
      replace(box, h('fieldset', { class: 'rule-part' },
        h('legend', { text: `Check on ${what}` }),
        h('p', { class: 'hint', text: action === 'create'
          ? 'The row as written (with the fields set above) must meet this, else 403 rule.denied and nothing is written.'
          : 'The changed row must still meet this, else 403 rule.denied and nothing changes.' }),
        conditionForm(`${action} check`, rule.check, (v) => {
          if (v === undefined) delete rule.check; else rule.check = v;
          write();
        }),
        h('button', { type: 'button', class: 'btn btn-sm btn-ghost', dataset: { role: 'remove-check' }, onclick: () => { delete rule.check; open = false; write(); draw(); } }, icon('trash'), 'Remove the check')));
    };
    draw();
    return box;
  }

  /** The fields an update rule lets callers change: a checkbox each. @param {any} rule @param {() => void} write */
  function columnsPart(rule, write) {
    const boxes = userFields.map((/** @type {any} */ f) => {
      const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', name: 'rule-update-columns', value: f.name, checked: Array.isArray(rule.columns) && rule.columns.includes(f.name) }));
      box.addEventListener('change', () => {
        const picked = boxes.filter((b) => b.checked).map((b) => b.value);
        if (picked.length) rule.columns = picked; else delete rule.columns;
        write();
      });
      return box;
    });
    return h('fieldset', { class: 'rule-part rule-columns' },
      h('legend', { text: 'Fields callers may change' }),
      h('div', { class: 'fm-collist' }, boxes.map((b, i) => h('label', { class: 'check fm-colbox' }, b, userFields[i].name))),
      h('p', { class: 'hint', text: 'None ticked: every field. A patch naming another field is refused whole (403 rule.denied).' }));
  }

  /** The fields a create rule sets: field → value rows. @param {any} rule @param {() => void} write */
  function setPart(rule, write) {
    const settable = cols.filter((c) => !c.system && c.type !== 'json');
    const box = h('div', { class: 'rule-set-rows' });
    const draw = (/** @type {number} */ focus = -1) => {
      const entries = Object.entries(isObj(rule.set) ? rule.set : {});
      const rewrite = (/** @type {[string, any][]} */ list) => {
        if (list.length) rule.set = Object.fromEntries(list); else delete rule.set;
        write();
      };
      replace(box, entries.map(([f, v], i) => {
        const column = settable.find((c) => c.name === f) || { name: f, type: 'text', required: false, hasDefault: false, system: false };
        const field = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input rule-set-field', 'aria-label': `Create sets: field ${i + 1}` }));
        for (const c of settable) if (c.name === f || !(c.name in rule.set)) field.append(new Option(c.name, c.name));
        if (!settable.some((c) => c.name === f)) field.append(new Option(`${f} (cannot be set)`, f));
        field.value = f;
        field.addEventListener('change', () => {
          const next = settable.find((c) => c.name === field.value);
          const keep = isAuth(v) || (next && literalFits(v, next));
          rewrite(entries.map(([k, x]) => (k === f ? [field.value, keep ? x : startingLiteral(/** @type {Column} */ (next))] : [k, x])));
          draw(i);
        });
        const value = ruleValue({ label: `Create sets ${f}`, value: v, column, op: 'eq', set: (nv) => { rule.set[f] = nv; write(); } });
        const rm = h('button', { type: 'button', class: 'fl-btn fm-remove', text: '\u2715', 'aria-label': `Stop setting ${f}`, onclick: () => { rewrite(entries.filter(([k]) => k !== f)); draw(); } });
        if (i === focus) queueMicrotask(() => field.focus());
        return h('div', { class: 'fm-row rule-set-row', dataset: { field: f } }, h('div', { class: 'fm-map-head' }, field, rm), value);
      }),
      entries.length < settable.length
        ? h('button', { type: 'button', class: 'btn btn-sm', dataset: { role: 'add-set' }, onclick: () => {
            const taken = new Set(entries.map(([k]) => k));
            const next = settable.find((c) => c.name === owner && !taken.has(c.name)) || settable.find((c) => !taken.has(c.name));
            if (!next) return;
            rewrite([...entries, [next.name, next.name === owner ? { auth: 'id' } : startingLiteral(next)]]);
            draw(entries.length);
          } }, icon('plus'), 'Set a field')
        : null);
    };
    draw();
    return h('fieldset', { class: 'rule-part rule-set' },
      h('legend', { text: 'Fields the rule sets' }),
      h('p', { class: 'hint', text: 'Written whatever the flow gives; a caller\u2019s value that is empty (an anonymous caller) refuses the row.' }),
      box);
  }

  /**
   * The form of one action's rule.
   * @param {string} action @param {any} value @param {(v: any) => void} set
   */
  function ruleForm(action, value, set) {
    const rule = structuredClone(value);
    const write = () => set(structuredClone(rule));
    const parts = [];
    if (action === 'create') parts.push(setPart(rule, write));
    else {
      parts.push(h('fieldset', { class: 'rule-part' },
        h('legend', { text: action === 'update' ? 'Rows callers may change' : 'Rows it lets through' }),
        conditionForm(`${action} rule`, rule.where, (v) => { rule.where = v === undefined ? { and: [] } : v; write(); })));
    }
    if (action === 'update') parts.push(columnsPart(rule, write));
    if (action === 'update' || action === 'create') parts.push(checkPart(rule, write, action));
    return h('div', { class: 'rule-form' }, parts);
  }

  /** Applies the "Only the owner" preset to `action`. @param {string} action */
  function preset(action) {
    if (!owner) return;
    if (action === 'create') {
      const c = isObj(work.create) ? work.create : {};
      work.create = { ...c, set: { ...(isObj(c.set) ? c.set : {}), [owner]: { auth: 'id' } } };
    } else {
      work[action] = { ...(isObj(work[action]) ? work[action] : {}), where: ownerCondition(owner) };
    }
    drawAction(action, 'owner');
    changed();
  }

  /**
   * Redraws one action's section; `focus` names the control (`data-role`) to focus after.
   * @param {string} action @param {string} [focus]
   */
  function drawAction(action, focus) {
    const sec = sections[action];
    const rule = work[action];
    const presetButton = owner
      ? h('button', { type: 'button', class: 'btn btn-sm', dataset: { role: 'owner' }, title: action === 'create' ? `Sets ${owner} to the caller\u2019s id` : `Lets through rows whose ${owner} is the caller\u2019s id`, onclick: () => preset(action) },
        action === 'create' ? `Set ${owner} to the caller` : 'Only the owner')
      : null;
    const [title, hint] = TITLES[action];
    const head = h('div', { class: 'rule-action-head' },
      h('div', null, h('h3', { id: `rule-${action}-title`, text: title }), h('p', { class: 'hint', text: hint })),
      h('span', { class: `tag ${rule === undefined ? '' : 'tag-accent'}`, text: rule === undefined ? 'no rule' : 'rule' }));
    let body;
    if (rule === undefined) {
      body = h('div', { class: 'rule-none' },
        h('p', { text: NO_RULE[action] }),
        h('div', { class: 'rule-buttons' },
          h('button', { type: 'button', class: 'btn btn-sm', dataset: { role: 'add' }, onclick: () => {
            work[action] = action === 'create' ? {} : { where: { and: [] } };
            drawAction(action, 'remove');
            changed();
          } }, icon('plus'), 'Add a rule'),
          presetButton));
    } else {
      body = h('div', { class: 'rule-body' },
        withJson({
          name: `${action} rule`, value: rule, empty: '{}',
          set: (v) => { if (v === undefined) delete work[action]; else work[action] = v; changed(); },
          canShow: (v) => (v === undefined ? null : ruleProblem(action, v)),
          build: (v, set) => ruleForm(action, v, set),
        }),
        h('div', { class: 'rule-buttons' }, presetButton,
          h('button', { type: 'button', class: 'btn btn-sm btn-ghost', dataset: { role: 'remove' }, onclick: () => {
            delete work[action];
            drawAction(action, 'add');
            changed();
          } }, icon('trash'), 'Remove the rule')));
    }
    replace(sec.el, head, body, sec.problems);
    sec.el.classList.toggle('has-rule', rule !== undefined);
    if (focus) /** @type {HTMLElement | null} */ (sec.el.querySelector(`[data-role="${focus}"]`))?.focus();
  }

  for (const action of ACTIONS) {
    sections[action] = {
      el: h('section', { class: 'rule-action', id: `rule-${action}`, 'aria-labelledby': `rule-${action}-title`, dataset: { action } }),
      problems: h('div', { class: 'rule-problems', id: `rule-${action}-problems` }),
    };
  }

  /** Shows a server answer's problems under the actions they point into, the rest by the save button. @param {any} e */
  function showProblems(e) {
    const details = Array.isArray(e?.details) ? e.details : [];
    /** @type {Record<string, any[]>} */
    const per = {};
    const rest = [];
    for (const d of details) {
      const m = /^\/table\/rules\/([a-z]+)(\/|$)/.exec(d?.pointer || '');
      if (m && sections[m[1]]) (per[m[1]] ||= []).push(d); else rest.push(d);
    }
    for (const [action, list] of Object.entries(per)) {
      replace(sections[action].problems, errorBox({ message: `The server refused this rule: ${e.message}`, details: list }));
    }
    if (rest.length || !Object.keys(per).length) replace(problems, errorBox({ message: e?.message || String(e), details: rest }));
    const first = /** @type {HTMLElement | null} */ (el.querySelector('.rule-problems .error-box, #rules-problems .error-box'));
    first?.scrollIntoView({ block: 'nearest' });
  }

  const clearProblems = () => {
    replace(problems);
    for (const s of Object.values(sections)) replace(s.problems);
  };

  review.addEventListener('click', async () => {
    clearProblems();
    const body = { table: { ...def, rules: cleaned(work) }, confirm_drop: [] };
    let plan;
    try {
      plan = (await api('POST', `/tables/${encodeURIComponent(name)}/plan`, { body })).body;
    } catch (e) {
      showProblems(e);
      return;
    }
    const applied = await previewAndApply(def, body, plan, ctx.etag);
    if (applied) {
      leaving = true;
      toast(`Access rules of ${name} saved.`, 'success');
      // Reload with the new version.
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    } else if (plan.breaks?.length) {
      replace(problems, breaksBox(plan.breaks, 'Not applied: these published endpoints cannot apply the new rules (add a bypass to their node, or move it to an admin endpoint).'));
    }
  });
  discard.addEventListener('click', () => {
    work = structuredClone(saved || {});
    clearProblems();
    for (const a of ACTIONS) drawAction(a);
    changed();
  });

  /** @param {BeforeUnloadEvent} e */
  const onUnload = (e) => { if (el.isConnected && !leaving && dirty()) { e.preventDefault(); e.returnValue = ''; } };
  window.addEventListener('beforeunload', onUnload);
  ctx.guard?.(() => (!leaving && dirty() ? `The access rules of ${name} have changes that are not saved. Leave anyway?` : null));

  // The field the presets use.
  const ownerSelect = /** @type {HTMLSelectElement} */ (h('select', { id: 'rules-owner' }));
  for (const f of userFields.filter((/** @type {any} */ f) => f.type !== 'json')) ownerSelect.append(new Option(`${f.name} (${f.type}${f.table ? ` → ${f.table}` : ''})`, f.name));
  if (!owner) ownerSelect.prepend(new Option('(pick a field)', ''));
  ownerSelect.value = owner;
  ownerSelect.addEventListener('change', () => {
    owner = ownerSelect.value;
    for (const a of ACTIONS) drawAction(a);
  });

  const usage = h('div', { id: 'rules-usage', 'aria-busy': 'true' }, h('p', { class: 'hint', text: 'Looking through the published endpoints\u2026' }));

  replace(el,
    h('section', { class: 'panel', 'aria-labelledby': 'rules-who-title' },
      h('div', { class: 'panel-head' },
        h('div', null, h('h2', { id: 'rules-who-title', text: 'Who can do what' }),
          h('p', { class: 'hint', text: 'For public and user endpoints and functions. Admin endpoints, flows with a trigger and nodes that bypass are not restricted by these rules. A caller value that is empty (an anonymous caller, a missing claim) matches nothing.' }))),
      h('div', { class: 'panel-body' }, summary)),
    h('section', { class: 'panel', 'aria-labelledby': 'rules-edit-title' },
      h('div', { class: 'panel-head' },
        h('div', null, h('h2', { id: 'rules-edit-title', text: 'Access rules' }),
          h('p', { class: 'hint', text: 'One rule per action. Changes are reviewed before they are applied; flows apply them from the next request on.' })),
        userFields.length
          ? h('div', { class: 'field rules-owner' }, h('label', { for: 'rules-owner', text: 'Owner field (for "Only the owner")' }), ownerSelect)
          : null),
      h('div', { class: 'rule-actions' }, ACTIONS.map((a) => sections[a].el)),
      h('div', { class: 'designer-actions' }, h('div', null, problems), h('div', { class: 'page-actions' }, discard, review))),
    h('section', { class: 'panel', 'aria-labelledby': 'rules-usage-title' },
      h('div', { class: 'panel-head' },
        h('div', null, h('h2', { id: 'rules-usage-title', text: 'Endpoints affected' }),
          h('p', { class: 'hint', text: 'Published flows whose nodes read or write this table, as published now.' }))),
      usage));
  for (const a of ACTIONS) drawAction(a);
  changed();
  loadUsage(usage, name, tables);
  return () => window.removeEventListener('beforeunload', onUnload);
}

/**
 * The published flows whose nodes read or write `name`: `GET /flows`, then the published
 * version of each published flow (the draft may differ from what is served).
 * @param {HTMLElement} box @param {string} name @param {any[]} tables
 */
async function loadUsage(box, name, tables) {
  try {
    const flows = ((await api('GET', '/flows')).body.flows || []).filter((/** @type {any} */ f) => f.published_version !== null && f.published_version !== undefined);
    const docs = await Promise.all(flows.map(async (/** @type {any} */ f) => ({
      f, doc: (await api('GET', `/flows/${f.id}/versions/${f.published_version}`)).body.document,
    })));
    const used = docs.map(({ f, doc }) => ({ f, doc, uses: tableUses(doc, name, tables) })).filter((x) => x.uses.length);
    box.removeAttribute('aria-busy');
    if (!used.length) {
      replace(box, h('div', { class: 'empty' }, h('p', { text: `No published endpoint reads or writes ${name}.` })));
      return;
    }
    replace(box, h('div', { class: 'table-wrap' }, h('table', { class: 'data rules-usage' },
      h('thead', null, h('tr', null, h('th', { scope: 'col', text: 'Flow' }), h('th', { scope: 'col', text: 'Who may call' }), h('th', { scope: 'col', text: 'Nodes on this table' }))),
      h('tbody', null, used.map(({ f, doc, uses }) => {
        const who = callers(doc);
        const route = doc.endpoint ? `${doc.endpoint.method || 'GET'} ${doc.endpoint.path || ''}` : doc.trigger ? `${doc.trigger.kind} trigger` : 'function';
        return h('tr', { dataset: { flow: f.name } },
          h('td', null, h('a', { href: `#/flows/${f.id}`, class: 'mono', text: route }), h('div', { class: 'hint', text: `${f.name} · v${f.published_version}` })),
          h('td', null, h('span', { class: `tag ${who.applies ? 'tag-accent' : 'tag-warning'}`, text: who.applies ? 'rules apply' : 'exempt' }), ' ', who.who),
          h('td', null, h('ul', { class: 'rules-nodes' }, uses.map((u) => h('li', null,
            h('code', { text: u.id }), ` ${u.type}, ${u.how}`,
            u.bypass ? h('span', null, ' ', h('span', { class: 'tag tag-warning', text: 'bypasses rules' }), ` ${u.bypass}`) : null)))));
      })))));
  } catch (e) {
    box.removeAttribute('aria-busy');
    replace(box, errorBox(e));
  }
}
