// @ts-check
/**
 * The names a form offers as value sources, read from the flow document: the request fields the
 * flow declares in its input schemas, the variables bound before a node (`as` of the nodes that
 * lead to it), and a table's columns with their types. Pure functions of values; no DOM.
 */

/**
 * A declared request field.
 * @typedef {{part: 'body' | 'query' | 'params', name: string, path: string, schema: any, required: boolean}} RequestField
 */

/** @param {any} doc @returns {RequestField[]} */
export function requestFields(doc) {
  /** @type {RequestField[]} */
  const out = [];
  for (const part of /** @type {const} */ (['body', 'params', 'query'])) {
    const s = doc?.input?.[part];
    const props = s && typeof s === 'object' && s.properties && typeof s.properties === 'object' ? s.properties : {};
    const req = new Set(Array.isArray(s?.required) ? s.required : []);
    for (const [name, schema] of Object.entries(props)) {
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) out.push({ part, name, path: `request.${part}.${name}`, schema, required: req.has(name) });
    }
  }
  // Path parameters are there even when no schema declares them.
  for (const m of String(doc?.endpoint?.path || '').matchAll(/\{([a-z][a-z0-9_]*)\}/g)) {
    if (!out.some((f) => f.part === 'params' && f.name === m[1])) out.push({ part: 'params', name: m[1], path: `request.params.${m[1]}`, schema: {}, required: true });
  }
  return out;
}

/** Every node id a node's `next` names, at any depth. @param {any} next @returns {string[]} */
function targets(next) {
  if (typeof next === 'string') return [next];
  if (next && typeof next === 'object') return Object.values(next).flatMap(targets);
  return [];
}

/**
 * Variables bound before `nodeId`: the `as` of every node from which it can be reached (all
 * nodes' `as` when it cannot be reached yet, e.g. before it is wired), then the request's parts
 * and `auth`.
 * @param {any} doc @param {string | undefined} nodeId @returns {string[]}
 */
export function variables(doc, nodeId) {
  const nodes = doc?.nodes || {};
  /** @type {Map<string, string[]>} */
  const preds = new Map();
  for (const [id, n] of Object.entries(nodes)) {
    for (const t of targets(/** @type {any} */ (n).next)) {
      if (!preds.has(t)) preds.set(t, []);
      /** @type {string[]} */ (preds.get(t)).push(id);
    }
  }
  const seen = new Set();
  const stack = nodeId ? [...(preds.get(nodeId) || [])] : [];
  while (stack.length) {
    const id = /** @type {string} */ (stack.pop());
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(preds.get(id) || []));
  }
  const from = seen.size ? [...seen] : Object.keys(nodes).filter((id) => id !== nodeId);
  const names = from.map((id) => nodes[id]?.as).filter((a) => typeof a === 'string' && a);
  return [...new Set([...names.sort(), 'request.body', 'request.query', 'request.params', 'auth'])];
}

/**
 * A column of a table as forms show it.
 * @typedef {{name: string, type: string, required: boolean, hasDefault: boolean, system: boolean, values?: string[], table?: string, itemType?: string}} Column
 */

/**
 * The columns of table `name` in `tables` (the `GET /tables` list), the system columns `id`,
 * `created_at`, `updated_at` first; null when the table is unknown.
 * @param {any[]} tables @param {string | undefined} name @returns {Column[] | null}
 */
export function columnsOf(tables, name) {
  const t = (tables || []).find((x) => x.name === name);
  if (!t) return null;
  /** @type {Column[]} */
  const cols = [
    { name: 'id', type: t.id_type === 'uuid' ? 'uuid' : 'integer', required: false, hasDefault: true, system: true },
    { name: 'created_at', type: 'timestamp', required: false, hasDefault: true, system: true },
    { name: 'updated_at', type: 'timestamp', required: false, hasDefault: true, system: true },
  ];
  for (const f of t.fields || []) {
    cols.push({ name: f.name, type: f.type, required: !!f.required, hasDefault: f.default !== undefined && f.default !== null, system: false, values: f.values, table: f.table });
  }
  return cols;
}

/** Rhai words that look like a path but are not a variable. */
const KEYWORDS = new Set(['true', 'false', 'let', 'const', 'if', 'else', 'fn', 'return', 'this', 'in', 'for', 'while', 'loop']);

/** A dotted path of names (`user.id`), the shape a "variable" source writes. @param {string} s */
export const isPath = (s) => /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(s) && !KEYWORDS.has(s.split('.')[0]);
