// @ts-check
/**
 * Where one value comes from, picked in a form instead of typed as Rhai or JSON: not set, a
 * request field, a variable (a path such as `user.id`), a literal typed by the column's type, or
 * an expression (the inspector's expression widget, which also takes JSON). `readSource` reads
 * an existing value back into its mode; `writeSource` writes exactly the JSON the flow format
 * takes (`{"$rhai": "request.body.title"}`, a literal, ...). Used by the column mapping grid,
 * the filter builder and the `value` widget.
 */
import { h, uid } from '../../dom.js';
import { WIDGETS } from '../widgets.js';
import { entryRows } from './map.js';
import { isPath, requestFields, variables } from './names.js';

/**
 * @typedef {{kind: 'unset'}
 *   | {kind: 'request', part: string, name: string, optional: boolean, fallback: string}
 *   | {kind: 'variable', path: string}
 *   | {kind: 'literal', value: any}
 *   | {kind: 'object', value: Record<string, any>}
 *   | {kind: 'expression', value: any}} Source
 * @typedef {import('./names.js').Column} Column
 * @typedef {import('../widgets.js').FormContext} FormContext
 */

const REQUEST = /^request\.(body|query|params)\.([A-Za-z_][A-Za-z0-9_]*)$/;
// The generated-CRUD form of an optional field: the field when the request has it, else a fallback.
const OPTIONAL = /^if "([A-Za-z_][A-Za-z0-9_]*)" in request\.(body|query|params) \{ request\.(body|query|params)\.([A-Za-z_][A-Za-z0-9_]*) \} else \{ ([\s\S]*) \}$/;

/** `{"$rhai": "..."}` and nothing else. @param {any} v */
export const isRhai = (v) => !!v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && typeof v.$rhai === 'string';

/**
 * The mode a value is shown in.
 * @param {any} value @param {Column} [column] @returns {Source}
 */
export function readSource(value, column) {
  if (value === undefined) return { kind: 'unset' };
  if (isRhai(value)) {
    const s = value.$rhai;
    let m = REQUEST.exec(s);
    if (m) return { kind: 'request', part: m[1], name: m[2], optional: false, fallback: '()' };
    m = OPTIONAL.exec(s);
    if (m && m[1] === m[4] && m[2] === m[3]) return { kind: 'request', part: m[2], name: m[1], optional: true, fallback: m[5].trim() };
    // Any other path is a variable, `request.body` (a whole part of the request) included.
    if (isPath(s)) return { kind: 'variable', path: s };
    return { kind: 'expression', value };
  }
  if (column && literalFits(value, column)) return { kind: 'literal', value };
  return { kind: 'expression', value };
}

/** @param {Source} src @returns {any} the value to write (undefined: leave the property out) */
export function writeSource(src) {
  switch (src.kind) {
    case 'unset': return undefined;
    case 'request': {
      if (!src.name) return undefined;
      const path = `request.${src.part}.${src.name}`;
      return { $rhai: src.optional ? `if "${src.name}" in request.${src.part} { ${path} } else { ${src.fallback.trim() || '()'} }` : path };
    }
    case 'variable': return src.path ? { $rhai: src.path } : undefined;
    default: return src.value;
  }
}

/** Whether a literal can be shown in the typed input of `column`. @param {any} v @param {Column} column */
export function literalFits(v, column) {
  switch (column.type) {
    case 'boolean': return typeof v === 'boolean';
    case 'integer': return Number.isInteger(v);
    case 'decimal': return typeof v === 'number';
    case 'enum': return typeof v === 'string' && (column.values || []).includes(v);
    case 'json': return false;
    case 'list': return Array.isArray(v) && v.every((x) => ['string', 'number', 'boolean'].includes(typeof x));
    case 'reference': return typeof v === 'string' || Number.isInteger(v);
    default: return typeof v === 'string';
  }
}

const MODE_LABELS = /** @type {Record<string, string>} */ ({
  unset: 'not set', request: 'request field', variable: 'variable', literal: 'value', object: 'object (name → value)', expression: 'expression / JSON',
});

/** A text, a number or a boolean. @param {any} v */
const isScalar = (v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/** A plain JSON object that is not an expression. @param {any} v */
const isObject = (v) => !!v && typeof v === 'object' && !Array.isArray(v) && !isRhai(v);

/**
 * A mode select and the control of the chosen mode.
 * `matchName` (without a column) is the name a new request field source looks for.
 * @param {{label: string, value: any, set: (v: any) => void, ctx?: FormContext, column?: Column, matchName?: string, allowUnset?: boolean, onChange?: (src: Source) => void}} o
 * @returns {HTMLElement}
 */
export function sourcePicker(o) {
  let src = readSource(o.value, o.column);
  // Without a column (a response body, a call's input) an object is edited as name → value rows.
  if (src.kind === 'expression' && !o.column && isObject(o.value)) src = { kind: 'object', value: o.value };
  // Without a column, a text, a number or true/false is a value of its own type.
  if (src.kind === 'expression' && !o.column && isScalar(o.value)) src = { kind: 'literal', value: o.value };
  const modes = [o.allowUnset ? 'unset' : '', 'request', 'variable', !o.column || o.column.type !== 'json' ? 'literal' : '', o.column ? '' : 'object', 'expression'].filter(Boolean);
  const mode = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-mode', 'aria-label': `${o.label}: value from` }));
  for (const m of modes) mode.append(new Option(MODE_LABELS[m], m));
  const body = h('div', { class: 'fm-source-body' });
  const wrap = h('div', { class: 'fm-source' }, mode, body);
  /** @param {Source} s @param {boolean} write */
  const apply = (s, write) => {
    src = s;
    wrap.dataset.mode = s.kind;
    if (write) o.set(writeSource(s));
    o.onChange?.(s);
  };
  const draw = () => {
    mode.value = src.kind;
    wrap.dataset.mode = src.kind;
    body.replaceChildren(control(src, o, (s) => apply(s, true)));
  };
  mode.addEventListener('change', () => {
    apply(initial(/** @type {Source['kind']} */ (mode.value), src, o), true);
    draw();
  });
  draw();
  return wrap;
}

/**
 * What a newly picked mode starts with: the request field named like the column when one is
 * declared; the value as it was for an expression.
 * @param {Source['kind']} kind @param {Source} was @param {{column?: Column, matchName?: string, ctx?: FormContext, value: any}} o @returns {Source}
 */
function initial(kind, was, o) {
  switch (kind) {
    case 'unset': return { kind };
    case 'request': {
      const fields = o.ctx ? requestFields(o.ctx.doc()) : [];
      const want = o.column?.name ?? o.matchName;
      const f = fields.find((x) => x.name === want && x.part === 'body') || fields.find((x) => x.name === want) || fields[0];
      return { kind, part: f ? f.part : 'body', name: f ? f.name : '', optional: false, fallback: '()' };
    }
    case 'variable': return { kind, path: was.kind === 'variable' ? was.path : '' };
    case 'literal': return { kind, value: o.column ? defaultLiteral(o.column) : '' };
    case 'object': return { kind, value: was.kind === 'expression' && isObject(was.value) ? was.value : {} };
    default: return { kind: 'expression', value: writeSource(was) };
  }
}

/** @param {Column} c */
function defaultLiteral(c) {
  switch (c.type) {
    case 'boolean': return false;
    case 'enum': return (c.values || [])[0] ?? '';
    case 'integer': case 'decimal': return 0;
    case 'list': return [];
    default: return '';
  }
}

/**
 * The control of one mode.
 * @param {Source} src @param {{label: string, ctx?: FormContext, column?: Column}} o @param {(s: Source) => void} change
 * @returns {Node}
 */
function control(src, o, change) {
  switch (src.kind) {
    case 'unset': return document.createTextNode('');
    case 'request': return requestControl(src, o, change);
    case 'variable': {
      const names = o.ctx ? variables(o.ctx.doc(), o.ctx.nodeId) : [];
      const list = uid('fm-vars');
      const inp = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-var', list, value: src.path, placeholder: 'a path, e.g. user.id', 'aria-label': `${o.label}: variable path` }));
      inp.spellcheck = false;
      const dl = h('datalist', { id: list }, ...names.map((v) => new Option(v, v)));
      inp.addEventListener('input', () => {
        const p = inp.value.trim();
        const ok = p === '' || isPath(p);
        inp.setAttribute('aria-invalid', String(!ok));
        if (ok) change({ kind: 'variable', path: p });
      });
      // The variables in scope as a pick list; "a path…" (or a path not in the list) shows the text input.
      const sel = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-var-pick', 'aria-label': `${o.label}: variable` }));
      if (!src.path) sel.append(new Option('(pick a variable)', ''));
      for (const v of names) sel.append(new Option(v, v));
      sel.append(new Option('a path…', '*path'));
      const listed = !src.path || names.includes(src.path);
      sel.value = listed ? src.path : '*path';
      inp.hidden = listed;
      sel.addEventListener('change', () => {
        const other = sel.value === '*path';
        inp.hidden = !other;
        if (other) { inp.focus(); return; }
        inp.value = sel.value;
        change({ kind: 'variable', path: sel.value });
      });
      return h('span', { class: 'fm-inline' }, sel, inp, dl);
    }
    case 'literal': return o.column
      ? literalInput(o.column, src.value, (v) => change({ kind: 'literal', value: v }), o.label)
      : untypedLiteral(src.value, (v) => change({ kind: 'literal', value: v }), o.label);
    case 'object': return entryRows({ label: o.label, value: src.value, ctx: o.ctx, set: (v) => change({ kind: 'object', value: v }) });
    default: return WIDGETS.expression({ schema: {}, name: o.label, required: false, value: src.value, set: (v) => change({ kind: 'expression', value: v }) });
  }
}

/** @param {Extract<Source, {kind: 'request'}>} src @param {{label: string, ctx?: FormContext, column?: Column}} o @param {(s: Source) => void} change */
function requestControl(src, o, change) {
  const fields = o.ctx ? requestFields(o.ctx.doc()) : [];
  let pick;
  if (fields.length) {
    const sel = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-field', 'aria-label': `${o.label}: request field` }));
    if (!src.name) sel.append(new Option('(pick a field)', ''));
    for (const f of fields) sel.append(new Option(`${f.part}.${f.name}`, `${f.part}.${f.name}`));
    const cur = `${src.part}.${src.name}`;
    if (src.name && !fields.some((f) => `${f.part}.${f.name}` === cur)) sel.append(new Option(`${cur} (not declared)`, cur));
    sel.value = src.name ? cur : '';
    sel.addEventListener('change', () => {
      const [part, name] = sel.value.split('.');
      change({ ...src, part: part || 'body', name: name || '' });
      src = { ...src, part: part || 'body', name: name || '' };
    });
    pick = sel;
  } else {
    const inp = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-field', value: src.name ? `${src.part}.${src.name}` : '', placeholder: 'body.title', 'aria-label': `${o.label}: request field (body.x, query.x or params.x)` }));
    inp.spellcheck = false;
    inp.addEventListener('input', () => {
      const m = /^(body|query|params)\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(inp.value.trim());
      inp.setAttribute('aria-invalid', String(!m && inp.value.trim() !== ''));
      if (m) { src = { ...src, part: m[1], name: m[2] }; change(src); }
    });
    pick = inp;
  }
  const optional = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', class: 'fm-optional', checked: src.optional }));
  const otherwise = fallbackControl(src, o, (text) => { src = { ...src, fallback: text }; change(src); });
  otherwise.hidden = !src.optional;
  optional.addEventListener('change', () => { src = { ...src, optional: optional.checked }; otherwise.hidden = !optional.checked; change(src); });
  return h('span', { class: 'fm-request' }, pick,
    h('label', { class: 'fl-check fm-only-sent', title: 'Use the field only when the request has it; otherwise the value chosen below' }, optional, 'only when sent'),
    otherwise);
}

/** A literal as Rhai source text (the fallback of an optional request field). @param {any} v @returns {string} */
export function rhaiLiteral(v) {
  if (Array.isArray(v)) return `[${v.map(rhaiLiteral).join(', ')}]`;
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

/**
 * What an optional request field falls back to when the request does not have it: no value
 * (`()`: an insert takes the column's default, a filter condition is skipped), a value typed
 * by the column, or an expression. Keeps the text as written until it is edited.
 * @param {Extract<Source, {kind: 'request'}>} src @param {{label: string, column?: Column}} o @param {(text: string) => void} change
 */
function fallbackControl(src, o, change) {
  const text = src.fallback.trim();
  let literal;
  try { literal = JSON.parse(text); } catch { literal = undefined; }
  const typed = o.column && o.column.type !== 'json' ? o.column : undefined;
  let kind = text === '()' || text === '' ? 'none' : typed && literal !== undefined && literalFits(literal, typed) ? 'value' : 'expression';
  const sel = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-fallback-kind', 'aria-label': `${o.label}: otherwise` },
    new Option('otherwise: no value', 'none'), typed ? new Option('otherwise: a value', 'value') : '', new Option('otherwise: an expression', 'expression')));
  sel.value = kind;
  const body = h('span', { class: 'fm-fallback-body' });
  let current = text || '()';
  const draw = () => {
    if (kind === 'value' && typed) {
      body.replaceChildren(literalInput(typed, literal, (v) => { literal = v; current = rhaiLiteral(v); change(current); }, `${o.label} otherwise`));
    } else if (kind === 'expression') {
      const inp = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-fallback', value: current, 'aria-label': `${o.label}: otherwise (Rhai expression)` }));
      inp.spellcheck = false;
      inp.addEventListener('input', () => { current = inp.value; change(current); });
      body.replaceChildren(inp);
    } else body.replaceChildren();
  };
  sel.addEventListener('change', () => {
    kind = sel.value;
    if (kind === 'none') current = '()';
    else if (kind === 'value' && typed) {
      if (literal === undefined || !literalFits(literal, typed)) literal = defaultLiteral(typed);
      current = rhaiLiteral(literal);
    }
    change(current);
    draw();
  });
  draw();
  return h('span', { class: 'fm-fallback-wrap' }, sel, body);
}

/**
 * A value without a column: its type (text, number, true/false) and an input of that type.
 * @param {any} value @param {(v: any) => void} set @param {string} label
 */
function untypedLiteral(value, set, label) {
  const kinds = /** @type {Record<string, string>} */ ({ text: 'text', decimal: 'number', boolean: 'true / false' });
  let type = typeof value === 'boolean' ? 'boolean' : typeof value === 'number' ? 'decimal' : 'text';
  const sel = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-literal-type', 'aria-label': `${label}: type of the value` },
    ...Object.entries(kinds).map(([k, t]) => new Option(t, k))));
  sel.value = type;
  const slot = h('span', { class: 'fm-literal-slot' });
  const column = () => ({ name: label, type, required: false, hasDefault: false, system: false });
  const draw = () => slot.replaceChildren(literalInput(column(), value, (v) => { value = v; set(v); }, label));
  sel.addEventListener('change', () => {
    type = sel.value;
    value = type === 'boolean' ? value === true || value === 'true' : type === 'decimal' ? (Number.isFinite(Number(value)) ? Number(value) : 0) : String(value ?? '');
    set(value);
    draw();
  });
  draw();
  return h('span', { class: 'fm-inline' }, sel, slot);
}

/**
 * An input typed by a column's type: checkbox, number, enum select, date, date and time, text.
 * @param {Column} column @param {any} value @param {(v: any) => void} set @param {string} label
 */
export function literalInput(column, value, set, label) {
  const aria = `${label}: value`;
  switch (column.type) {
    case 'boolean': {
      const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', class: 'fm-literal', checked: value === true, 'aria-label': aria }));
      box.addEventListener('change', () => set(box.checked));
      return h('label', { class: 'fl-check' }, box, 'true');
    }
    case 'integer': case 'decimal': {
      const inp = /** @type {HTMLInputElement} */ (h('input', { type: 'number', class: 'fl-input fm-literal', step: column.type === 'integer' ? '1' : 'any', value: value === undefined || value === null ? '' : String(value), 'aria-label': aria }));
      inp.addEventListener('input', () => { if (inp.value !== '' && Number.isFinite(Number(inp.value))) set(Number(inp.value)); });
      return inp;
    }
    case 'enum': {
      const sel = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-literal', 'aria-label': aria }));
      for (const v of column.values || []) sel.append(new Option(v, v));
      sel.value = String(value ?? '');
      sel.addEventListener('change', () => set(sel.value));
      return sel;
    }
    case 'list': {
      // The values of an `in` filter: comma-separated, typed by the column's type.
      const item = column.itemType || 'text';
      const inp = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-literal', value: Array.isArray(value) ? value.join(', ') : '', placeholder: 'a, b, c', 'aria-label': `${aria} (comma-separated)` }));
      inp.spellcheck = false;
      inp.addEventListener('input', () => {
        const parts = inp.value.split(',').map((x) => x.trim()).filter((x) => x !== '');
        set(parts.map((x) => (item === 'integer' || item === 'decimal') && Number.isFinite(Number(x)) ? Number(x)
          : item === 'boolean' && (x === 'true' || x === 'false') ? x === 'true' : x));
      });
      return inp;
    }
    case 'date': case 'timestamp': {
      const ts = column.type === 'timestamp';
      const inp = /** @type {HTMLInputElement} */ (h('input', { type: ts ? 'datetime-local' : 'date', class: 'fl-input fm-literal', 'aria-label': ts ? `${aria} (local time)` : aria }));
      if (typeof value === 'string' && value) {
        const d = new Date(value);
        if (!ts) inp.value = value.slice(0, 10);
        else if (!Number.isNaN(d.getTime())) inp.value = new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
      }
      inp.addEventListener('change', () => {
        if (!inp.value) return;
        set(ts ? new Date(inp.value).toISOString() : inp.value);
      });
      return inp;
    }
    default: {
      const inp = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-literal', type: column.type === 'email' ? 'email' : 'text', value: value ?? '', 'aria-label': aria }));
      inp.spellcheck = false;
      inp.addEventListener('input', () => set(column.type === 'reference' && /^\d+$/.test(inp.value) ? Number(inp.value) : inp.value));
      return inp;
    }
  }
}
