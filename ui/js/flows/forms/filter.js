// @ts-check
/**
 * The filter builder (`"x-widget": "filter"`): conditions (column, operator, value) in `and` /
 * `or` groups that nest up to 4 deep, written in the flow format's filter grammar
 * (FLOW-FORMAT.md, "db.query filters"). Operators are limited to those that fit the column's
 * type; values are picked like in the mapping grid. A filter that is a single condition stays a
 * single condition until a second one is added.
 */
import { h } from '../../dom.js';
import { withJson } from './advanced.js';
import { columnsOf } from './names.js';
import { isRhai, literalFits, sourcePicker } from './source.js';

const MAX_DEPTH = 4;
/** The operators as the builder words them. */
export const OPS = /** @type {Record<string, string>} */ ({
  eq: 'equals', ne: 'differs from', lt: 'is less than', le: 'is at most', gt: 'is greater than', ge: 'is at least',
  in: 'is one of', contains: 'contains', starts_with: 'starts with', is_null: 'is null',
});

/** Operators that fit a column type. @param {string} type @returns {string[]} */
export function opsFor(type) {
  if (type === 'password') return [];
  const ops = ['eq', 'ne'];
  if (type !== 'json') ops.push('lt', 'le', 'gt', 'ge');
  ops.push('in');
  if (['text', 'email', 'enum'].includes(type)) ops.push('contains', 'starts_with');
  ops.push('is_null');
  return ops;
}

const isGroup = (/** @type {any} */ n) => n && typeof n === 'object' && !Array.isArray(n) && Object.keys(n).length === 1 && Array.isArray(n.and ?? n.or);
const itemsOf = (/** @type {any} */ g) => /** @type {any[]} */ (g.and ?? g.or);

/**
 * Why the form cannot show a filter, or null.
 * @param {any} n @param {number} depth @returns {string | null}
 */
export function filterProblem(n, depth = 1) {
  if (isGroup(n)) {
    if (depth > MAX_DEPTH) return `groups nest more than ${MAX_DEPTH} deep.`;
    for (const c of itemsOf(n)) { const p = filterProblem(c, depth + 1); if (p) return p; }
    return null;
  }
  if (!n || typeof n !== 'object' || Array.isArray(n)) return 'a part of it is neither a condition nor a group.';
  const keys = Object.keys(n).sort().join(',');
  if (keys !== 'field,op,value' || typeof n.field !== 'string' || !Object.hasOwn(OPS, n.op)) return 'a condition has another shape than {field, op, value}.';
  return null;
}

/** @param {import('../widgets.js').WidgetArgs} a */
export function filterWidget(a) {
  const ctx = a.ctx;
  const cols = () => (columnsOf(ctx ? ctx.tables() : [], ctx?.node()?.table) || []).filter((c) => c.type !== 'password');
  return withJson({
    name: a.name, value: a.value, set: a.set, empty: '{"and": []}',
    canShow: (v) => {
      if (v === undefined) return null;
      const p = filterProblem(v);
      if (p) return p;
      if (!cols().length) return 'the node\u2019s table is not known, so its columns cannot be listed.';
      return null;
    },
    build: (value, set) => conditionBuilder(a.name, cols(), value, set, ctx),
  });
}

/**
 * What another form changes in the builder (the access rules of the Rules tab use them; the
 * inspector's filter uses none):
 * - `value`: the control of a condition's value (default: the value picker of `source.js`);
 * - `keeps(value, op)`: whether a value that is not a literal stays when the field or the
 *   operator changes (default: Rhai expressions do);
 * - `leaf(node, key, remove, write)`: the control of an item that is neither a condition nor a
 *   group, or null (then it is shown as a condition);
 * - `adds(push, key)`: more buttons beside + Condition and + Group; `push(item, focus)` adds an
 *   item to the group and focuses its control whose `data-fkey` is `<item key>.<focus>`;
 * - `prefix`: of every `data-fkey`, so a builder nested in another keeps its own focus;
 * - `rootLabel`: the words before the top group's and/or select (default "Rows match").
 * @typedef {{
 *   value?: (o: {label: string, value: any, column: import('./names.js').Column, op: string, set: (v: any) => void}) => HTMLElement,
 *   keeps?: (v: any, op: string) => boolean,
 *   leaf?: (node: any, key: string, remove: () => void, write: () => void) => HTMLElement | null,
 *   adds?: (push: (item: any, focus: string) => void, key: string) => HTMLElement[],
 *   prefix?: string, rootLabel?: string,
 * }} BuilderHooks
 */

/**
 * The builder itself: conditions on `cols` in and/or groups; `set` gets the whole filter
 * (undefined once every condition is removed).
 * @param {string} name @param {import('./names.js').Column[]} cols @param {any} value
 * @param {(v: any) => void} set @param {import('../widgets.js').FormContext | undefined} ctx
 * @param {BuilderHooks} [hooks]
 */
export function conditionBuilder(name, cols, value, set, ctx, hooks = {}) {
  if (!cols.length) return h('p', { class: 'fl-hint', text: 'Pick a table first; its columns can then be filtered.' });
  const keeps = hooks.keeps || ((/** @type {any} */ v) => isRhai(v));
  // A bare condition (or no filter) is shown as a group of its own; it is written back bare
  // while the group holds one condition.
  const bare = !isGroup(value);
  const root = bare ? { and: value === undefined ? [] : [structuredClone(value)] } : structuredClone(value);
  const el = h('div', { class: 'fm-filter' });
  const write = () => {
    const items = itemsOf(root);
    set(bare && root.and && items.length <= 1 ? (items.length ? structuredClone(items[0]) : undefined) : structuredClone(root));
  };
  /** Redraws, keeping focus on the control with the same key when it still exists. @param {string} [focus] */
  const redraw = (focus) => {
    const was = focus || /** @type {HTMLElement | null} */ (document.activeElement)?.dataset?.fkey;
    el.replaceChildren(group(root, null, 1, `${hooks.prefix || ''}0`));
    if (was) /** @type {HTMLElement | null} */ (el.querySelector(`[data-fkey="${was}"]`))?.focus();
  };
  const colOf = (/** @type {string} */ f) => cols.find((c) => c.name === f) || { name: f, type: 'text', required: false, hasDefault: false, system: false };
  const firstCol = () => cols.find((c) => !c.system) || cols[0];

  /** A value's kind for an operator: is_null takes a boolean, in a list, the rest a column value. */
  const valueColumn = (/** @type {any} */ c) => {
    const col = colOf(c.field);
    if (c.op === 'is_null') return { ...col, type: 'boolean' };
    if (c.op === 'in') return { ...col, type: 'list', itemType: col.type };
    return col;
  };
  const starting = (/** @type {any} */ col, /** @type {string} */ op) => (op === 'is_null' ? true : op === 'in' ? [] : col.type === 'boolean' ? true : ['integer', 'decimal'].includes(col.type) ? 0 : col.type === 'enum' ? (col.values || [])[0] ?? '' : '');

  /** @param {any} g @param {any} parent @param {number} depth @param {string} key */
  function group(g, parent, depth, key) {
    const kind = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-group-op', 'aria-label': `${name}: ${parent ? 'group' : 'conditions'} match`, dataset: { fkey: `${key}.op` } },
      new Option('all of (and)', 'and'), new Option('any of (or)', 'or')));
    kind.value = g.and ? 'and' : 'or';
    kind.addEventListener('change', () => {
      const items = itemsOf(g);
      delete g.and; delete g.or;
      g[kind.value] = items;
      write();
    });
    const list = h('div', { class: 'fm-group-items' });
    itemsOf(g).forEach((c, i) => {
      const k = `${key}.${i}`;
      const remove = () => {
        itemsOf(g).splice(itemsOf(g).indexOf(c), 1);
        write();
        redraw(`${key}.addc`);
      };
      list.append(isGroup(c) ? group(c, g, depth + 1, k) : hooks.leaf?.(c, k, remove, write) || condition(c, g, k));
    });
    const addCond = h('button', { type: 'button', class: 'fl-btn fm-add', text: '+ Condition', dataset: { fkey: `${key}.addc` }, onclick: () => {
      const col = firstCol();
      itemsOf(g).push({ field: col.name, op: 'eq', value: starting(col, 'eq') });
      write();
      redraw(`${key}.${itemsOf(g).length - 1}.field`);
    } });
    const addGroup = depth < MAX_DEPTH ? h('button', { type: 'button', class: 'fl-btn fm-add', text: '+ Group', dataset: { fkey: `${key}.addg` }, onclick: () => {
      const col = firstCol();
      itemsOf(g).push({ [g.and ? 'or' : 'and']: [{ field: col.name, op: 'eq', value: starting(col, 'eq') }] });
      write();
      redraw(`${key}.${itemsOf(g).length - 1}.0.field`);
    } }) : '';
    const remove = parent ? h('button', { type: 'button', class: 'fl-btn fm-remove', text: '✕', 'aria-label': 'Remove this group', title: 'Remove this group', onclick: () => {
      itemsOf(parent).splice(itemsOf(parent).indexOf(g), 1);
      write();
      redraw(`${key.split('.').slice(0, -1).join('.')}.addg`);
    } }) : '';
    return h('div', { class: parent ? 'fm-group fm-subgroup' : 'fm-group', dataset: { depth: String(depth) } },
      h('div', { class: 'fm-group-head' }, h('span', { class: 'fm-muted', text: parent ? 'Group: match' : hooks.rootLabel || 'Rows match' }), kind, remove),
      list,
      itemsOf(g).length ? '' : h('p', { class: 'fl-hint', text: parent ? 'An empty group.' : 'No conditions: every row.' }),
      h('div', { class: 'fm-group-actions' }, addCond, addGroup, hooks.adds?.((item, focus) => {
        itemsOf(g).push(item);
        write();
        redraw(`${key}.${itemsOf(g).length - 1}.${focus}`);
      }, key) || ''));
  }

  /** @param {any} c @param {any} parent @param {string} key */
  function condition(c, parent, key) {
    const field = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-cond-field', 'aria-label': `${name}: column`, dataset: { fkey: `${key}.field` } }));
    for (const col of cols) field.append(new Option(col.name, col.name));
    if (!cols.some((x) => x.name === c.field)) field.append(new Option(`${c.field} (not a column)`, c.field));
    field.value = c.field;
    const op = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-cond-op', 'aria-label': `${name}: ${c.field} operator`, dataset: { fkey: `${key}.op` } }));
    const ops = opsFor(colOf(c.field).type);
    for (const o of ops) op.append(new Option(OPS[o], o));
    if (!ops.includes(c.op)) op.append(new Option(`${c.op} (does not fit)`, c.op));
    op.value = c.op;
    const refit = () => {
      const vc = valueColumn(c);
      if (!keeps(c.value, c.op) && !literalFits(c.value, vc)) c.value = starting(colOf(c.field), c.op);
    };
    field.addEventListener('change', () => {
      c.field = field.value;
      if (!opsFor(colOf(c.field).type).includes(c.op)) c.op = 'eq';
      refit(); write(); redraw(`${key}.field`);
    });
    op.addEventListener('change', () => { c.op = op.value; refit(); write(); redraw(`${key}.op`); });
    // A condition always has a value: an empty source is written as null, which the server
    // flags (a literal null would always skip the condition) instead of a malformed condition.
    const setValue = (/** @type {any} */ v) => { c.value = v === undefined ? null : v; write(); };
    const value = hooks.value
      ? hooks.value({ label: `${name}: ${c.field}`, value: c.value, column: valueColumn(c), op: c.op, set: setValue })
      : sourcePicker({ label: `${name}: ${c.field}`, value: c.value, ctx, column: valueColumn(c), set: setValue });
    const remove = h('button', { type: 'button', class: 'fl-btn fm-remove', text: '✕', 'aria-label': `Remove the condition on ${c.field}`, onclick: () => {
      itemsOf(parent).splice(itemsOf(parent).indexOf(c), 1);
      write();
      redraw(`${key.split('.').slice(0, -1).join('.')}.addc`);
    } });
    return h('div', { class: 'fm-cond', dataset: { field: c.field } }, h('div', { class: 'fm-cond-head' }, field, op, remove), value);
  }

  redraw();
  return el;
}
