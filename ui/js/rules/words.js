// @ts-check
/**
 * The pure half of the Rules tab (`../rules.js`): what a table's access rules say in plain
 * words, which shapes its forms can show, the field the "Only the owner" preset picks, and which
 * nodes of a flow document read or write a table. No DOM, no requests (docs/RULES.md has the
 * format these read).
 */

/** The actions in the order the tab shows them. */
export const ACTIONS = /** @type {const} */ (['list', 'view', 'create', 'update', 'delete']);

/** A claim name as the server takes it after `claims.`. */
export const CLAIM = /^[A-Za-z0-9_-]{1,64}$/;

/** Operators that compare with a field of the checked row (`{"row": ...}`, inside an exists). */
export const ROW_OPS = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'];

const OPS = ['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'in', 'contains', 'starts_with', 'is_null'];

/** @param {any} v */
const isObj = (v) => !!v && typeof v === 'object' && !Array.isArray(v);

/** `{"auth": "id"}` or `{"auth": "claims.<name>"}`. @param {any} v */
export const isAuth = (v) => isObj(v) && Object.keys(v).length === 1 && (v.auth === 'id' || (typeof v.auth === 'string' && v.auth.startsWith('claims.') && CLAIM.test(v.auth.slice(7))));

/** `{"row": "<field>"}`: a field of the checked row, inside an exists. @param {any} v */
export const isRow = (v) => isObj(v) && Object.keys(v).length === 1 && typeof v.row === 'string';

/** An and/or group. @param {any} n */
export const isGroup = (n) => isObj(n) && Object.keys(n).length === 1 && Array.isArray(n.and ?? n.or);

/** `{"exists": {"table", "where"}}`. @param {any} n */
export const isExists = (n) => isObj(n) && Object.keys(n).length === 1 && isObj(n.exists);

/** A literal a form can type: a text, a number, true/false, or a list of them. @param {any} v */
const isLiteral = (v) => ['string', 'number', 'boolean'].includes(typeof v)
  || (Array.isArray(v) && v.every((x) => ['string', 'number', 'boolean'].includes(typeof x)));

/**
 * Why the condition form cannot show `n`, or null. `inside`: within an exists, where values may
 * also be `{"row": ...}` and another exists may not be.
 * @param {any} n @param {boolean} [inside] @param {number} [depth] @returns {string | null}
 */
export function conditionProblem(n, inside = false, depth = 1) {
  if (isGroup(n)) {
    if (depth > 4) return 'groups nest more than 4 deep.';
    for (const c of n.and ?? n.or) { const p = conditionProblem(c, inside, depth + 1); if (p) return p; }
    return null;
  }
  if (isExists(n)) {
    if (inside) return 'an exists is inside another exists.';
    const e = n.exists;
    if (Object.keys(e).sort().join(',') !== 'table,where' || typeof e.table !== 'string') return 'an exists has another shape than {table, where}.';
    return conditionProblem(e.where, true, depth + 1);
  }
  if (!isObj(n) || Object.keys(n).sort().join(',') !== 'field,op,value' || typeof n.field !== 'string' || !OPS.includes(n.op)) {
    return 'a part of it is neither a condition {field, op, value}, a group nor an exists.';
  }
  if (isAuth(n.value) || (inside && isRow(n.value)) || isLiteral(n.value)) return null;
  return 'a condition\u2019s value is neither a literal, the caller\u2019s id or claim, nor a field of the checked row.';
}

/**
 * Why the form of `action` cannot show `rule`, or null.
 * @param {string} action @param {any} rule @returns {string | null}
 */
export function ruleProblem(action, rule) {
  if (!isObj(rule)) return 'the rule is not an object.';
  const allowed = action === 'create' ? ['set', 'check'] : action === 'update' ? ['where', 'columns', 'check'] : ['where'];
  const other = Object.keys(rule).find((k) => !allowed.includes(k));
  if (other) return `the rule has a key the form does not know (${other}).`;
  if (action !== 'create') {
    if (rule.where === undefined) return 'the rule has no where.';
    const p = conditionProblem(rule.where);
    if (p) return p;
  }
  if (rule.check !== undefined) {
    const p = conditionProblem(rule.check);
    if (p) return p;
  }
  if (rule.columns !== undefined && !(Array.isArray(rule.columns) && rule.columns.every((/** @type {any} */ c) => typeof c === 'string'))) return 'columns is not a list of field names.';
  if (rule.set !== undefined) {
    if (!isObj(rule.set)) return 'set is not an object.';
    if (Object.values(rule.set).some((v) => !isAuth(v) && !['string', 'number', 'boolean'].includes(typeof v))) return 'a value of set is neither a literal nor the caller\u2019s id or claim.';
  }
  return null;
}

/**
 * The field the "Only the owner" preset picks: one named `owner`, else one referencing the
 * `users` table, else one named `owner_id`, `user_id` or `user`; undefined when none fits.
 * @param {any} def @returns {string | undefined}
 */
export function ownerField(def) {
  const fields = (def?.fields || []).filter((/** @type {any} */ f) => f.type !== 'password' && f.type !== 'json');
  return (fields.find((/** @type {any} */ f) => f.name === 'owner')
    || fields.find((/** @type {any} */ f) => f.type === 'reference' && f.table === 'users')
    || fields.find((/** @type {any} */ f) => ['owner_id', 'user_id', 'user'].includes(f.name)))?.name;
}

/** The condition "the field is the caller's id". @param {string} field */
export const ownerCondition = (field) => ({ field, op: 'eq', value: { auth: 'id' } });

const OP_WORDS = /** @type {Record<string, string>} */ ({
  eq: 'is', ne: 'is not', lt: 'is less than', le: 'is at most', gt: 'is more than', ge: 'is at least',
  in: 'is one of', contains: 'contains', starts_with: 'starts with',
});

/**
 * A value as words: the caller's (`their id`, or with `callerWord` "the caller's" `the
 * caller's id`), the checked row's field, or the literal as JSON.
 * @param {any} v @param {string} [caller] @returns {string}
 */
export function valueWords(v, caller = 'their') {
  if (isAuth(v)) return v.auth === 'id' ? `${caller} id` : `${caller} claim ${v.auth.slice(7)}`;
  if (isRow(v)) return `this row\u2019s ${v.row}`;
  if (Array.isArray(v)) return v.map((x) => JSON.stringify(x)).join(', ');
  return JSON.stringify(v);
}

/**
 * A condition as words: `owner is their id and (title starts with "public:" or done is true)`.
 * @param {any} n @param {boolean} [inner] nested groups get parentheses @returns {string}
 */
export function conditionWords(n, inner = false) {
  if (isGroup(n)) {
    const items = n.and ?? n.or;
    if (!items.length) return n.and ? 'any row' : 'no row';
    // A group of one item reads as that item.
    const s = items.map((/** @type {any} */ c) => conditionWords(c, items.length > 1 || inner)).join(n.and ? ' and ' : ' or ');
    return inner && items.length > 1 ? `(${s})` : s;
  }
  if (isExists(n)) return `a row of ${n.exists.table} exists where ${conditionWords(n.exists.where, inner)}`;
  if (!isObj(n)) return JSON.stringify(n);
  if (n.op === 'is_null') return `${n.field} ${n.value === false ? 'is not empty' : 'is empty'}`;
  return `${n.field} ${OP_WORDS[n.op] || n.op} ${valueWords(n.value)}`;
}

/**
 * Whether the condition can only match for a caller with a value (an id, a claim): a null
 * caller value matches nothing, so an anonymous caller (or one without the claim) gets nothing.
 * @param {any} n @returns {boolean}
 */
export function needsCaller(n) {
  if (isGroup(n)) {
    const items = n.and ?? n.or;
    return n.and ? items.some(needsCaller) : items.length > 0 && items.every(needsCaller);
  }
  if (isExists(n)) return needsCaller(n.exists.where);
  return isObj(n) && isAuth(n.value);
}

/** @param {any} n */
const matchesNothing = (n) => isGroup(n) && Array.isArray(n.or) && n.or.length === 0;
/** @param {any} n */
const matchesAll = (n) => isGroup(n) && Array.isArray(n.and) && n.and.length === 0;

const VERB = /** @type {Record<string, [string, string]>} */ ({
  list: ['list', 'list every row'], view: ['view', 'view any row'], create: ['create', 'create rows'],
  update: ['update', 'update any row'], delete: ['delete', 'delete any row'],
});

/** @param {string[]} parts */
const joinWords = (parts) => (parts.length < 2 ? parts.join('') : `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`);

/**
 * "Who can do what": one sentence per action with a rule, one for the actions without.
 * @param {any} rules the table's `rules` (or undefined) @returns {string[]}
 */
export function summaryLines(rules) {
  const r = isObj(rules) ? rules : {};
  const out = [];
  const free = [];
  for (const action of ACTIONS) {
    const rule = r[action];
    const [verb, freely] = VERB[action];
    if (!isObj(rule)) { free.push(freely); continue; }
    if (action === 'create') { out.push(createWords(rule)); continue; }
    if (!isObj(rule.where) || ruleProblem(action, rule)) { out.push(`${cap(verb)}: a rule the form cannot put in words (see its JSON).`); continue; }
    const who = needsCaller(rule.where) ? 'Signed-in callers' : 'Callers';
    let s;
    if (matchesNothing(rule.where)) s = `Nobody may ${verb} any row`;
    else if (matchesAll(rule.where)) s = `Callers may ${freely} (the rule lets every row through)`;
    else s = `${who} ${verb} only rows where ${conditionWords(rule.where)}`;
    if (action === 'update') {
      if (Array.isArray(rule.columns)) s += rule.columns.length ? `, changing only ${joinWords(rule.columns)}` : ', changing no field';
      if (rule.check !== undefined) s += `; the changed row must then meet: ${conditionWords(rule.check)}`;
    }
    if (needsCaller(rule.where)) s += '; anonymous callers get none';
    out.push(`${s}.`);
  }
  if (free.length) out.push(`No rule: anyone who may call the endpoint may ${joinWords(free)}.`);
  return out;
}

/** @param {string} s */
const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);

/** The create rule in words. @param {any} rule */
function createWords(rule) {
  if (ruleProblem('create', rule)) return 'Create: a rule the form cannot put in words (see its JSON).';
  const set = Object.entries(isObj(rule.set) ? rule.set : {});
  const parts = [];
  if (set.length) parts.push(`create sets ${joinWords(set.map(([f, v]) => `${f} to ${valueWords(v, 'the caller\u2019s')}`))}`);
  if (rule.check !== undefined) parts.push(`a new row must meet: ${conditionWords(rule.check)}`);
  if (!parts.length) return 'Anyone who may call the endpoint may create rows (the create rule sets and checks nothing).';
  const anonymous = set.some(([, v]) => isAuth(v)) || (rule.check !== undefined && needsCaller(rule.check));
  return `${cap(parts.join('; '))}${anonymous ? '; anonymous callers cannot create rows' : ''}.`;
}

/** The database node types and the rule each applies. */
export const DB_NODES = /** @type {Record<string, string>} */ ({
  'db.query': 'applies the list rule', 'db.aggregate': 'applies the list rule (counts only the rows it lets through)', 'db.get': 'applies the view rule', 'db.insert': 'applies the create rule',
  'db.update': 'applies the update rule', 'db.delete': 'applies the delete rule',
  'db.upsert': 'applies no rule (must bypass when there is a create or update rule)',
  'db.sql': 'its SQL names this table (must bypass when there are rules)',
});

/**
 * Whether SQL text names `table` as a word, quoted or not (the server's test for `db.sql`).
 * @param {any} sql @param {string} table
 */
export function sqlNames(sql, table) {
  if (typeof sql !== 'string') return false;
  const want = table.toLowerCase();
  for (const m of sql.matchAll(/"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*)/g)) {
    if ((m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2].toLowerCase()) === want) return true;
  }
  return false;
}

/**
 * The nodes of a flow document (bodies of `for_each` included) that read or write `table`:
 * database nodes on it, `db.query` nodes that include its rows through a reference, and
 * `db.sql` whose statement names it.
 * @param {any} doc @param {string} table @param {any[]} tables every table definition (for includes)
 * @returns {{id: string, type: string, how: string, bypass?: string}[]}
 */
export function tableUses(doc, table, tables) {
  /** @type {{id: string, type: string, how: string, bypass?: string}[]} */
  const out = [];
  const nodes = isObj(doc?.nodes) ? doc.nodes : {};
  for (const [id, n] of Object.entries(nodes)) {
    if (!isObj(n)) continue;
    const bypass = typeof n.rules?.bypass === 'string' ? n.rules.bypass : undefined;
    const type = String(n.type || '');
    if (type in DB_NODES) {
      let how = '';
      if (type === 'db.sql') how = sqlNames(n.sql, table) ? DB_NODES[type] : '';
      else if (n.table === table) how = DB_NODES[type];
      else if (type === 'db.query' && Array.isArray(n.include)) {
        const fields = (tables || []).find((t) => t.name === n.table)?.fields || [];
        if (n.include.some((/** @type {any} */ c) => fields.some((/** @type {any} */ f) => f.name === c && f.type === 'reference' && f.table === table))) how = 'includes its rows (they obey its view rule)';
      }
      if (how) out.push({ id, type, how, bypass });
    }
    if (isObj(n.body)) out.push(...tableUses(n.body, table, tables).map((u) => ({ ...u, id: `${id} › ${u.id}` })));
  }
  return out;
}

/**
 * Who calls a flow and whether rules apply to it, in words.
 * @param {any} doc @returns {{who: string, applies: boolean}}
 */
export function callers(doc) {
  const trigger = doc?.trigger?.kind;
  if (trigger) return { who: `${trigger} trigger: exempt (no caller)`, applies: false };
  const auth = doc?.endpoint ? doc.endpoint.auth || 'public' : null;
  if (auth === null) return { who: 'function: rules apply with its caller\u2019s auth', applies: true };
  if (auth === 'admin') return { who: 'admins: exempt from rules', applies: false };
  if (auth === 'user') return { who: 'signed-in users: rules apply', applies: true };
  return { who: 'anyone (public): rules apply, the caller is anonymous', applies: true };
}
