// @ts-check
/**
 * What a node says about itself in one line (its card on the canvas) and in one sentence (its
 * step in the stack view), driven by hints in the node type's schema, never by type names:
 *
 * - `x-summary`: the properties to summarise, in order; each a property name or
 *   `{"property": name, "label": text}` (the label goes before the value). Without the hint,
 *   the required properties are summarised.
 * - `x-sentence`: a sentence with `{property}` placeholders; a part in `[...]` is left out when
 *   a placeholder inside it has no value. Without the hint: the type's title and the summary.
 *
 * Every value is rendered compactly by its kind: a `{"$rhai": ...}` value as its text, code as
 * its first non-empty line, a filter as `title contains q and done = false`, a column map as
 * its keys, a JSON Schema as its property names, a list as its items. Pure: no DOM.
 */

/** Longest text kept for a tooltip. */
const MAX_TITLE = 400;

/** @param {any} v */
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A Rhai expression value: `{"$rhai": "..."}`. @param {any} v */
export const isRhai = (v) => isObj(v) && typeof v.$rhai === 'string' && Object.keys(v).length === 1;

/** @param {string} s */
const squash = (s) => s.replace(/\s+/g, ' ').trim();

/** The first non-empty line of a text, trimmed. @param {string} s */
export const firstLine = (s) => String(s).split('\n').map((l) => l.trim()).find((l) => l) || '';

/** Filter operators as they read. */
const OPS = /** @type {Record<string, string>} */ ({
  eq: '=', ne: '≠', lt: '<', le: '≤', gt: '>', ge: '≥', in: 'in', contains: 'contains', starts_with: 'starts with',
});

/** A filter condition or and/or group, as `db.query` and the data API take it. @param {any} v */
const isFilter = (v) => isObj(v) && ((typeof v.field === 'string' && typeof v.op === 'string') || Array.isArray(v.and) || Array.isArray(v.or));

/** @param {any} f @param {boolean} [inner] nested groups get parentheses */
function filterText(f, inner = false) {
  if (Array.isArray(f.and) || Array.isArray(f.or)) {
    const join = Array.isArray(f.and) ? ' and ' : ' or ';
    const parts = (f.and || f.or).map((/** @type {any} */ c) => (isFilter(c) ? filterText(c, true) : valueText(c)));
    if (!parts.length) return Array.isArray(f.and) ? 'all rows' : 'no rows';
    const s = parts.join(join);
    return inner && parts.length > 1 ? `(${s})` : s;
  }
  if (f.op === 'is_null') return `${f.field} ${isRhai(f.value) ? `is null if ${squash(f.value.$rhai)}` : f.value === false ? 'is not null' : 'is null'}`;
  return `${f.field} ${OPS[f.op] || f.op} ${valueText(f.value, null, true)}`;
}

/** One item of a list: a name, a `{column, desc}` ordering, else its first text. @param {any} item */
function itemText(item) {
  if (typeof item === 'string') return item;
  if (isRhai(item)) return squash(item.$rhai);
  if (isObj(item) && typeof item.column === 'string') return item.desc ? `${item.column} desc` : item.column;
  if (isObj(item)) {
    const s = Object.values(item).find((x) => typeof x === 'string');
    if (s) return /** @type {string} */ (s);
  }
  return JSON.stringify(item);
}

/**
 * A property's value, compactly. `prop` is the property's schema (it tells code from text and a
 * map of columns from a literal); `literal` quotes strings (a value inside a filter).
 * @param {any} v @param {any} [prop] @param {boolean} [literal]
 * @returns {string}
 */
export function valueText(v, prop = null, literal = false) {
  if (v === undefined) return '';
  if (v === null) return 'null';
  if (isRhai(v)) return squash(v.$rhai);
  if (typeof v === 'string') {
    if (prop?.['x-widget'] === 'code' || v.includes('\n')) return firstLine(v);
    // A literal where an expression could be is shown as JSON, so "x" is not read as a name.
    return literal || prop?.['x-widget'] === 'expression' ? JSON.stringify(v) : v;
  }
  if (typeof v !== 'object') return String(v);
  if (isFilter(v)) return filterText(v);
  if (Array.isArray(v)) return v.map(itemText).join(', ');
  if (isObj(v.properties) && (v.type === 'object' || v.$schema || Array.isArray(v.required))) {
    return Object.keys(v.properties).join(', ') || 'an object';
  }
  if (typeof v.entry === 'string' && isObj(v.nodes)) {
    const n = Object.keys(v.nodes).length;
    return `${n} step${n === 1 ? '' : 's'}`;
  }
  // A literal where an expression could be: short JSON. A map (columns, headers): its keys.
  if (prop?.['x-widget'] === 'expression') return JSON.stringify(v);
  return Object.keys(v).join(', ');
}

/**
 * The text of one property of `node`, or '' when it has none (its schema default counts).
 * @param {any} node @param {any} schema the node type's schema @param {string} name
 */
export function propertyText(node, schema, name) {
  const prop = schema?.properties?.[name] || null;
  const v = node?.[name] !== undefined ? node[name] : prop?.default;
  return valueText(v, prop);
}

/** The `x-summary` entries of a type: `{property, label}`. @param {any} schema */
function summaryEntries(schema) {
  const hint = schema?.['x-summary'];
  if (Array.isArray(hint)) {
    return hint.map((e) => (typeof e === 'string' ? { property: e, label: '' } : { property: String(e?.property || ''), label: String(e?.label || '') }))
      .filter((e) => e.property);
  }
  const skip = new Set(['type', 'v', 'next', 'as', 'description']);
  return (Array.isArray(schema?.required) ? schema.required : []).filter((p) => !skip.has(p)).map((p) => ({ property: p, label: '' }));
}

/**
 * The one-line summary of a node for its card: its summarised properties joined by ` · `.
 * @param {any} node @param {{schema?: any} | undefined} type the node type from `GET /node-types`
 * @returns {string}
 */
export function summary(node, type) {
  if (!node) return '';
  const schema = type?.schema;
  const parts = [];
  // A node that ignores its table's access rules says so first, on every card.
  if (typeof node.rules?.bypass === 'string') parts.push('bypasses access rules');
  for (const { property, label } of summaryEntries(schema)) {
    const text = propertyText(node, schema, property);
    if (text) parts.push(label ? `${label} ${text}` : text);
  }
  return clip(parts.join(' · '));
}

/** @typedef {{text: string, value?: boolean}} Part  a piece of a sentence; `value` marks a node's value */

/**
 * The sentence a stack step reads, from `x-sentence`, in parts (the values apart from the
 * words, so a view can set them in code type): "Insert into " + "books" + ": " + "pages, title".
 * @param {any} node @param {{type?: string, title?: string, schema?: any} | undefined} type
 * @returns {Part[]}
 */
export function sentenceParts(node, type) {
  if (!node) return [];
  const schema = type?.schema;
  const tpl = schema?.['x-sentence'];
  if (typeof tpl !== 'string') {
    const s = summary(node, type);
    const title = type?.title || node.type;
    return s ? [{ text: `${title}: ` }, { text: s, value: true }] : [{ text: title }];
  }
  /** @param {string} part @param {boolean} optional @returns {Part[]} */
  const fill = (part, optional) => {
    /** @type {Part[]} */
    const out = [];
    let at = 0, empty = false;
    for (const m of part.matchAll(/\{([a-z_][a-z0-9_]*)\}/g)) {
      if ((m.index || 0) > at) out.push({ text: part.slice(at, m.index) });
      const t = propertyText(node, schema, m[1]);
      if (!t) empty = true;
      out.push(t ? { text: clip(squash(t)), value: true } : { text: '…' });
      at = (m.index || 0) + m[0].length;
    }
    if (at < part.length) out.push({ text: part.slice(at) });
    return optional && empty ? [] : out;
  };
  // One pass over the template, so a value that looks like a placeholder stays as it is.
  /** @type {Part[]} */
  const parts = [];
  let at = 0;
  for (const m of tpl.matchAll(/\[([^\[\]]*)\]/g)) {
    parts.push(...fill(tpl.slice(at, m.index), false), ...fill(m[1], true));
    at = (m.index || 0) + m[0].length;
  }
  parts.push(...fill(tpl.slice(at), false));
  return parts.filter((p) => p.text);
}

/**
 * The sentence a stack step reads, as text: "Insert into books: pages, title".
 * @param {any} node @param {{type?: string, title?: string, schema?: any} | undefined} type
 * @returns {string}
 */
export function sentence(node, type) {
  return clip(squash(sentenceParts(node, type).map((p) => p.text).join('')));
}

/** @param {string} s */
const clip = (s) => (s.length > MAX_TITLE ? `${s.slice(0, MAX_TITLE - 1)}…` : s);
