// @ts-check
/**
 * The inspector's form controls, one per kind of config value, and the rule that picks one for
 * a property of a node type's JSON Schema: its `x-widget` hint when the schema has one the
 * editor knows, else its JSON type (no type: an expression-or-JSON value; object or array: JSON
 * text). A new node type therefore needs no UI code unless it wants a widget not listed here.
 * The purpose-built forms (table picker, column mapping, filter, ...) are one module each in
 * `forms/`. Knows nothing of the screen: a widget gets a value, a setter and, in the
 * inspector, a `FormContext` to read the document and the table list through.
 */
import { h, icon } from '../dom.js';
import { codeField, forwardTo, indentKeys } from '../code/field.js';
import { aggregateOrderWidget, aggregatesWidget } from './forms/aggregates.js';
import { columnsWidget } from './forms/columns.js';
import { columnListWidget, orderByWidget } from './forms/columnsel.js';
import { filterWidget } from './forms/filter.js';
import { functionPicker } from './forms/flowpick.js';
import { includeWidget } from './forms/include.js';
import { inputSchemaForm } from './forms/inputschema.js';
import { mapWidget } from './forms/map.js';
import { sourcePicker } from './forms/source.js';
import { clientSortWidget } from './forms/sort.js';
import { tablePicker } from './forms/table.js';

/**
 * What the purpose-built forms read besides their value: the flow document, the node being
 * edited, the cached table list (and a refresh of it), and a redraw of the inspector (after a
 * change other fields depend on, such as the node's table; `focus` is a selector to refocus).
 * @typedef {{
 *   doc: () => any, node: () => any, nodeId: string | undefined,
 *   tables: () => any[], refreshTables: () => Promise<any[]>, rerender: (focus?: string) => void,
 * }} FormContext
 */

/**
 * What a widget is built from. `set(undefined)` removes the property. `ctx` is there in the
 * inspector; without it the purpose-built forms fall back to plain JSON or expression widgets.
 * @typedef {{schema: any, name: string, required: boolean, value: any, set: (v: any) => void, ctx?: FormContext}} WidgetArgs
 */

/** @type {Record<string, (a: WidgetArgs) => HTMLElement>} */
export const WIDGETS = {
  /** Source code (Rhai, Tera, SQL by the schema's `x-language`): the code field of `code/field.js`. */
  code: (a) => textArea(a, { code: true, spellcheck: false }),
  /** Prose for people (descriptions): several lines, spellchecked. */
  text: (a) => textArea(a, { code: false, spellcheck: true }),
  /** A node value: a Rhai expression or a JSON literal, switched by the builder. */
  expression: (a) => valueWidget(a.value, a.set, a.name),
  /** Any JSON (objects, arrays), applied when it parses. */
  json: (a) => jsonArea(a.value, a.set, firstType(a.schema) === 'array' ? '[]' : '{}'),
  /** A value picked as a request field, a variable, or an expression / JSON (`forms/source.js`). */
  value: (a) => (a.ctx ? sourcePicker({ label: a.name, value: a.value, set: a.set, ctx: a.ctx, allowUnset: !a.required }) : WIDGETS.expression(a)),
  /** A select of the managed tables (`forms/table.js`). */
  table: tablePicker,
  /** One row per column of the node's table, each with its value's source (`forms/columns.js`). */
  columns: columnsWidget,
  /** Conditions and and/or groups over the node's table (`forms/filter.js`). */
  filter: filterWidget,
  /** An object's JSON Schema built field by field (`forms/inputschema.js`). */
  schema: (a) => inputSchemaForm({ name: a.name, part: 'value', value: a.value, set: a.set, pathParams: [] }),
  /** A select of the flows without an endpoint (`forms/flowpick.js`). */
  function: functionPicker,
  /** Name → value rows (`forms/map.js`). */
  map: mapWidget,
  /** Rows of column + direction (`forms/columnsel.js`). */
  'order-by': orderByWidget,
  /** A checkbox per column of the node's table (`forms/columnsel.js`). */
  'column-list': columnListWidget,
  /** Referenced rows and rows that reference the row (`forms/include.js`). */
  include: includeWidget,
  /** Where a client's sort comes from and the columns it may name (`forms/sort.js`). */
  'client-sort': clientSortWidget,
  /** Rows of name, function and column of `db.aggregate` (`forms/aggregates.js`). */
  aggregates: aggregatesWidget,
  /** Rows of group column or aggregate name + direction (`forms/aggregates.js`). */
  'aggregate-order': aggregateOrderWidget,
  enum: enumSelect,
  boolean: checkbox,
  number: numberInput,
  string: stringInput,
};

/**
 * The widget name for a property schema: a known `x-widget` hint, else one by JSON type.
 * @param {any} schema @returns {string}
 */
export function widgetName(schema) {
  const hint = schema['x-widget'];
  // `enum` draws the schema's list, so without one the hint cannot be honoured.
  if (typeof hint === 'string' && Object.hasOwn(WIDGETS, hint) && (hint !== 'enum' || Array.isArray(schema.enum))) return hint;
  if (schema.enum) return 'enum';
  const type = firstType(schema);
  if (type === undefined) return 'expression';
  if (type === 'boolean') return 'boolean';
  if (type === 'integer' || type === 'number') return 'number';
  if (type === 'string') return 'string';
  return 'json';
}

/** The first of a schema's JSON types. @param {any} schema @returns {string | undefined} */
const firstType = (schema) => (Array.isArray(schema.type) ? schema.type[0] : schema.type);

/** @param {WidgetArgs} a */
function enumSelect({ schema, required, value, set }) {
  const sel = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input' }));
  if (!required) sel.append(new Option('(default)', ''));
  for (const v of schema.enum) sel.append(new Option(String(v), String(v)));
  sel.value = value === undefined ? '' : String(value);
  sel.addEventListener('change', () => set(sel.value === '' ? undefined : schema.enum.find((/** @type {any} */ v) => String(v) === sel.value)));
  return sel;
}

/** @param {WidgetArgs} a */
function checkbox({ value, set }) {
  const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: value === true }));
  box.addEventListener('change', () => set(box.checked ? true : undefined));
  return box;
}

/** @param {WidgetArgs} a */
function numberInput({ schema, value, set }) {
  const integer = firstType(schema) === 'integer';
  const inp = /** @type {HTMLInputElement} */ (h('input', {
    class: 'fl-input', type: 'number', min: schema.minimum, max: schema.maximum, step: integer ? '1' : 'any',
    value: value === undefined ? '' : String(value),
  }));
  inp.addEventListener('input', () => set(inp.value === '' ? undefined : Number(inp.value)));
  return inp;
}

/** One line, or several for long strings (`maxLength` over 300). @param {WidgetArgs} a */
function stringInput(a) {
  if ((a.schema.maxLength || 0) > 300) return textArea(a, { code: false, spellcheck: false });
  const inp = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', value: a.value ?? '' }));
  inp.spellcheck = false;
  inp.addEventListener('input', () => a.set(inp.value === '' && !a.required ? undefined : inp.value));
  return inp;
}

/**
 * Text of several lines; for code, the code field (line numbers, highlighting, completion in
 * Rhai, diagnostics at line and column) in the language the schema's `x-language` names.
 * @param {WidgetArgs} a @param {{code: boolean, spellcheck: boolean}} o
 */
function textArea({ schema, value, set, required }, o) {
  const ta = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: o.code ? 'fl-input fl-code' : 'fl-input' }));
  ta.spellcheck = o.spellcheck;
  ta.value = value ?? '';
  ta.addEventListener('input', () => set(ta.value === '' && !required ? undefined : ta.value));
  return o.code ? codeField(ta, { lang: schema?.['x-language'], minRows: 6 }) : ta;
}

/** A node value: a Rhai expression or a JSON literal. @param {any} value @param {(v: any) => void} set @param {string} name */
function valueWidget(value, set, name) {
  const isExpr = value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 1 && typeof value.$rhai === 'string';
  const exprBtn = h('button', { class: 'fl-seg-btn', type: 'button', role: 'radio' }, icon('function', { size: 13 }), 'expression');
  const jsonBtn = h('button', { class: 'fl-seg-btn', type: 'button', role: 'radio', text: 'JSON' });
  const modes = h('div', { class: 'fl-seg', role: 'radiogroup', 'aria-label': `${name}: expression or JSON` }, exprBtn, jsonBtn);
  const expr = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'fl-input fl-code', 'aria-label': `${name} (Rhai expression)` }));
  expr.value = isExpr ? value.$rhai : '';
  expr.addEventListener('input', () => set(expr.value === '' ? undefined : { $rhai: expr.value }));
  const exprField = codeField(expr, { lang: 'rhai', minRows: 1, maxRows: 12 });
  const json = jsonArea(isExpr ? undefined : value, set, '');
  json.setAttribute('aria-label', `${name} (JSON)`);
  const show = (/** @type {boolean} */ e) => {
    exprField.hidden = !e; json.hidden = e;
    exprBtn.setAttribute('aria-checked', String(e)); jsonBtn.setAttribute('aria-checked', String(!e));
    exprBtn.classList.toggle('is-on', e); jsonBtn.classList.toggle('is-on', !e);
  };
  exprBtn.addEventListener('click', () => { show(true); if (expr.value) set({ $rhai: expr.value }); expr.focus(); });
  jsonBtn.addEventListener('click', () => { show(false); json.focus(); });
  show(isExpr || value === undefined);
  const wrap = h('div', { class: 'fl-value' }, modes, exprField, json);
  // Labels (and the diagnostics' aria-describedby) point at the expression.
  forwardTo(wrap, expr);
  return wrap;
}

/** @param {any} value @param {(v: any) => void} set @param {string} empty */
export function jsonArea(value, set, empty) {
  const ta = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'fl-input fl-code' }));
  codeArea(ta);
  ta.value = value === undefined ? empty : JSON.stringify(value, null, 2);
  ta.rows = Math.min(12, Math.max(2, ta.value.split('\n').length));
  const err = h('div', { class: 'fl-json-error' });
  ta.addEventListener('input', () => {
    if (ta.value.trim() === '') { err.textContent = ''; ta.removeAttribute('aria-invalid'); set(undefined); return; }
    try {
      const v = JSON.parse(ta.value);
      err.textContent = '';
      ta.removeAttribute('aria-invalid');
      set(v);
    } catch (e) {
      err.textContent = `Not JSON yet: ${/** @type {Error} */ (e).message}`;
      ta.setAttribute('aria-invalid', 'true');
    }
  });
  queueMicrotask(() => ta.after(err));
  return ta;
}

/** Tab indents and Shift+Tab outdents in JSON areas; Escape then Tab leaves. @param {HTMLTextAreaElement} ta */
function codeArea(ta) {
  ta.spellcheck = false;
  ta.setAttribute('autocapitalize', 'off');
  ta.setAttribute('autocomplete', 'off');
  indentKeys(ta);
}
