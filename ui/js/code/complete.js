// @ts-check
/**
 * What the code field offers to complete: the names in scope at the node (as the server's
 * validate answer describes them, `scope`), their known properties (a row's columns, the
 * declared `request.body`), variables the script declares before the caret, and the Rhai
 * functions and methods of the sandbox. Holds the last scope the server sent for the open
 * flow; knows nothing of the DOM.
 */

/**
 * A visible name or one of its properties, as `POST /flows/validate` sends it in `scope`.
 * @typedef {{name: string, kind: string, type?: string, node?: string, table?: string, fields?: ScopeName[]}} ScopeName
 */

/**
 * One completion: what is shown, what replaces the word being typed, where the caret goes
 * (offset into `insert`), and a short description.
 * @typedef {{label: string, insert: string, caret: number, detail: string}} Candidate
 */

/** @type {Record<string, ScopeName[]>} */
let scope = {};

/** Keeps the scope of the last validate answer (`{}` when a flow is opened). @param {Record<string, ScopeName[]> | undefined} s */
export function setScope(s) { scope = s || {}; }

/** The request box's names, for a node the server has not described (yet, or unreachable). */
const FALLBACK = /** @type {ScopeName[]} */ ([
  { name: 'request', kind: 'request', fields: ['params', 'query', 'body', 'headers'].map((name) => ({ name, kind: 'object' })) },
  { name: 'auth', kind: 'auth', fields: [{ name: 'id', kind: 'string' }, { name: 'claims', kind: 'object' }] },
  { name: 'env', kind: 'env' },
]);

/**
 * The names visible at a node, by the key the server uses (the node's id; inside a `for_each`
 * body `<loop id>/body/nodes/<id>`).
 * @param {string | null} key @returns {ScopeName[]}
 */
export function namesAt(key) {
  return (key !== null && scope[key]) || FALLBACK;
}

/** The scope key of a field from its JSON pointer (`/nodes/<id>/code`), or null. @param {string} pointer */
export function keyOf(pointer) {
  const m = /^\/nodes\/((?:[^/]+\/body\/nodes\/)*[^/]+)/.exec(pointer);
  return m ? m[1].replace(/~1/g, '/').replace(/~0/g, '~') : null;
}

/** Functions of the sandbox worth offering (see docs/FLOW-FORMAT.md, "Rhai sandbox"). */
const FUNCTIONS = [
  ['now', 0, 'current UTC time as RFC 3339 text'],
  ['uuid', 0, 'a random v4 UUID'],
  ['secret', 1, 'a secret environment value: secret("NAME")'],
  ['parse_json', 1, 'JSON text as a value'],
  ['to_json', 1, 'a value as JSON text'],
  ['parse_int', 1, 'text as an integer'],
  ['parse_float', 1, 'text as a number'],
  ['type_of', 1, 'the type name of a value'],
  ['timestamp', 0, 'a timestamp, to time with .elapsed'],
  ['is_def_var', 1, 'whether a variable is defined'],
];

/**
 * Methods by what the value is; `any` for values of unknown kind. Methods that change a value
 * in place (`push`, `sort`, `trim`, `replace`, ...) are left out: the names offered are
 * constants at run time, and changing one fails.
 */
const METHODS = /** @type {Record<string, [string, number][]>} */ ({
  string: [['len', 0], ['is_empty', 0], ['contains', 1], ['starts_with', 1], ['ends_with', 1], ['index_of', 1],
    ['sub_string', 2], ['split', 1], ['to_upper', 0], ['to_lower', 0], ['parse_int', 0], ['parse_float', 0],
    ['to_string', 0], ['to_json', 0]],
  list: [['len', 0], ['is_empty', 0], ['contains', 1], ['index_of', 1], ['map', 1], ['filter', 1], ['reduce', 2],
    ['some', 1], ['all', 1], ['find', 1], ['extract', 1], ['to_json', 0]],
  object: [['keys', 0], ['values', 0], ['len', 0], ['is_empty', 0], ['contains', 1], ['get', 1], ['to_json', 0]],
  number: [['abs', 0], ['to_string', 0], ['to_float', 0], ['to_int', 0], ['floor', 0], ['ceiling', 0], ['round', 0]],
  any: [['len', 0], ['contains', 1], ['is_empty', 0], ['to_string', 0], ['to_json', 0], ['type_of', 0]],
});

/** Which methods a described value has. @param {ScopeName | null} n */
function methodsOf(n) {
  if (!n) return METHODS.any;
  const kind = n.kind === 'column' ? columnKind(n.type) : n.kind;
  if (['row', 'object', 'request', 'auth', 'env', 'error'].includes(kind)) return METHODS.object;
  if (kind === 'rows' || kind === 'list') return METHODS.list;
  if (kind === 'string') return METHODS.string;
  if (kind === 'integer' || kind === 'number' || kind === 'index') return METHODS.number;
  return METHODS.any;
}

/** @param {string | undefined} type a column's field type */
function columnKind(type) {
  if (type === 'integer' || type === 'decimal') return 'number';
  if (type === 'json') return 'value';
  if (type === 'boolean') return 'boolean';
  return 'string';
}

/** What the completion list shows beside a name. @param {ScopeName} n */
function describe(n) {
  if (n.kind === 'row' && n.table) return `row of ${n.table}`;
  if (n.kind === 'rows' && n.table) return `rows of ${n.table}`;
  if (n.kind === 'column') return n.type || 'column';
  return n.node ? `${n.kind} from ${n.node}` : n.kind;
}

/**
 * Where completion applies at the caret: the word being typed (`from`..caret) and, after a
 * dot, the path before it (`request.body` in `request.body.ti`). Null inside strings and
 * comments, or when the caret is not after a name or a dot.
 * @param {string} src @param {number} caret @param {{t: string, from: number, to: number}[]} tokens
 * @returns {{from: number, word: string, path: string[] | null} | null}
 */
export function contextAt(src, caret, tokens) {
  const quoted = (/** @type {{t: string}} */ t) => t.t === 'str' || t.t === 'com';
  if (tokens.some((t) => quoted(t) && t.from < caret && (caret < t.to || (caret === t.to && open(src, t))))) return null;
  const before = src.slice(Math.max(0, caret - 400), caret);
  const m = /((?:[A-Za-z_][A-Za-z0-9_]*\s*\.\s*)*)([A-Za-z_][A-Za-z0-9_]*)?$/.exec(before);
  if (!m) return null;
  const word = m[2] || '';
  const chain = m[1] ? m[1].split('.').map((s) => s.trim()).filter(Boolean) : [];
  if (!chain.length && /[0-9.]$/.test(before.slice(0, before.length - word.length))) return null;
  if (/^[0-9]/.test(word)) return null;
  return { from: caret - word.length, word, path: chain.length ? chain : null };
}

/**
 * Whether a caret right after token `t` is still inside it: a line comment, or a string
 * without its closing quote.
 * @param {string} src @param {{t: string, from: number, to: number}} t
 */
function open(src, t) {
  const text = src.slice(t.from, t.to);
  if (t.t === 'com') return !text.startsWith('/*');
  if (t.t !== 'str') return false;
  return text.length < 2 || !['"', "'", '`'].includes(text[text.length - 1]) || text.endsWith('\\' + text[text.length - 1]);
}

/**
 * The candidates for a context, filtered by the word typed so far (prefix first, then
 * contains), names before functions.
 * @param {{word: string, path: string[] | null}} ctx @param {ScopeName[]} names
 * @param {string} src the whole text (for its `let` variables) @param {number} caret
 * @returns {Candidate[]}
 */
export function candidates(ctx, names, src, caret) {
  /** @type {Candidate[]} */
  let all = [];
  const locals = localNames(src.slice(0, caret));
  if (ctx.path) {
    let n = /** @type {ScopeName | null} */ (names.find((x) => x.name === ctx.path?.[0]) || null);
    for (const step of ctx.path.slice(1)) n = n?.fields?.find((f) => f.name === step) || null;
    for (const f of n?.fields || []) all.push({ label: f.name, insert: f.name, caret: f.name.length, detail: describe(f) });
    for (const [m, args] of methodsOf(n)) {
      if (all.some((c) => c.label === m)) continue;
      all.push({ label: `${m}()`, insert: `${m}()`, caret: m.length + (args ? 1 : 2), detail: 'method' });
    }
  } else {
    for (const x of names) all.push({ label: x.name, insert: x.name, caret: x.name.length, detail: describe(x) });
    for (const l of locals) if (!all.some((c) => c.label === l)) all.push({ label: l, insert: l, caret: l.length, detail: 'variable' });
    for (const [f, args, what] of FUNCTIONS) {
      all.push({ label: `${f}()`, insert: `${f}()`, caret: String(f).length + (args ? 1 : 2), detail: String(what) });
    }
  }
  const w = ctx.word.toLowerCase();
  if (!w) return all;
  const name = (/** @type {Candidate} */ c) => c.label.replace(/\(\)$/, '').toLowerCase();
  const starts = all.filter((c) => name(c).startsWith(w) && name(c) !== w);
  const contains = all.filter((c) => !name(c).startsWith(w) && name(c).includes(w));
  return [...starts, ...contains];
}

/** Variables a script declares before the caret (`let`, `const`, `for x in`). @param {string} src */
function localNames(src) {
  const out = new Set();
  for (const m of src.matchAll(/\b(?:let|const)\s+([A-Za-z_][A-Za-z0-9_]*)/g)) out.add(m[1]);
  for (const m of src.matchAll(/\bfor\s*\(?\s*([A-Za-z_][A-Za-z0-9_]*)(?:\s*,\s*([A-Za-z_][A-Za-z0-9_]*))?\s*\)?\s+in\b/g)) {
    out.add(m[1]);
    if (m[2]) out.add(m[2]);
  }
  return [...out];
}
