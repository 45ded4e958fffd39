// @ts-check
/**
 * Tokenizers for the code field's highlighting, bracket matching and completion: Rhai in full
 * (comments, strings, numbers, keywords, operators, names, properties, calls), and light
 * modes for Tera templates and SQL. A tokenizer never fails: any text gives tokens that lie
 * in order, and text between tokens is plain. Knows nothing of the DOM.
 */

/**
 * A token: its kind and where it lies in the text (`from` inclusive, `to` exclusive).
 * Kinds: `com` comment, `str` string, `num` number, `kw` keyword, `lit` literal (true, false),
 * `op` operator or punctuation, `br` one bracket, `id` name, `prop` property after a dot,
 * `fn` a name that is called, `tag` a Tera delimiter, `var` an SQL parameter.
 * @typedef {{t: string, from: number, to: number}} Token
 */

const RHAI_KEYWORDS = new Set(['let', 'const', 'if', 'else', 'switch', 'do', 'while', 'until', 'loop', 'for', 'in',
  'continue', 'break', 'return', 'throw', 'try', 'catch', 'fn', 'private', 'import', 'export', 'as', 'global', 'this']);

const WORD = /[A-Za-z0-9_]/;
const OPERATOR = /^(?:\?\.|\?\?|::|=>|\.\.=|\.\.|<<=|>>=|\*\*=|[-+*/%&|^<>!=]=|&&|\|\||<<|>>|\*\*|[-+*/%&|^<>!=~?:;,.#@$])/;
const NUMBER = /^(?:0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+|\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?)/;

/** @param {string} src @returns {Token[]} */
export function rhai(src) {
  /** @type {Token[]} */
  const out = [];
  const n = src.length;
  let i = 0;
  /** The last token that is not a comment: a word after `.` is a property. */
  let last = /** @type {Token | null} */ (null);
  const push = (/** @type {string} */ t, /** @type {number} */ to) => {
    const tok = { t, from: i, to };
    out.push(tok);
    if (t !== 'com') last = tok;
    i = to;
  };
  while (i < n) {
    const c = src[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') { i++; continue; }
    if (c === '/' && src[i + 1] === '/') { push('com', lineEnd(src, i)); continue; }
    if (c === '/' && src[i + 1] === '*') { push('com', blockEnd(src, i)); continue; }
    if (c === '`') { for (const t of backtick(src, i)) out.push(t); i = out[out.length - 1].to; last = out[out.length - 1]; continue; }
    if (c === '"' || c === "'") { push('str', stringEnd(src, i, c, false)); continue; }
    if (c >= '0' && c <= '9') { push('num', i + (NUMBER.exec(src.slice(i, i + 64))?.[0].length || 1)); continue; }
    if (WORD.test(c)) {
      let j = i + 1;
      while (j < n && WORD.test(src[j])) j++;
      const word = src.slice(i, j);
      const afterDot = last?.t === 'op' && (src.slice(last.from, last.to) === '.' || src.slice(last.from, last.to) === '?.');
      let k = j;
      while (src[k] === ' ') k++;
      const called = src[k] === '(';
      push(afterDot ? (called ? 'fn' : 'prop') : RHAI_KEYWORDS.has(word) ? 'kw' : word === 'true' || word === 'false' ? 'lit' : called ? 'fn' : 'id', j);
      continue;
    }
    if ('()[]{}'.includes(c)) { push('br', i + 1); continue; }
    const op = OPERATOR.exec(src.slice(i, i + 4));
    push('op', i + (op ? op[0].length : 1));
  }
  return out;
}

/**
 * A backtick string opened at `i`: its text as strings, each `${...}` inside as Rhai code
 * between two `op` tokens, so names there are highlighted and completed.
 * @param {string} src @param {number} i @returns {Token[]}
 */
function backtick(src, i) {
  /** @type {Token[]} */
  const out = [];
  let from = i;
  let j = i + 1;
  while (j < src.length && src[j] !== '`') {
    if (src[j] === '\\') { j += 2; continue; }
    if (src[j] === '$' && src[j + 1] === '{') {
      out.push({ t: 'str', from, to: j }, { t: 'op', from: j, to: j + 2 });
      let depth = 0;
      let k = j + 2;
      for (; k < src.length && !(src[k] === '}' && depth === 0) && src[k] !== '`'; k++) {
        if (src[k] === '{') depth++;
        else if (src[k] === '}') depth--;
      }
      for (const t of rhai(src.slice(j + 2, k))) out.push({ t: t.t, from: t.from + j + 2, to: t.to + j + 2 });
      if (src[k] === '}') { out.push({ t: 'op', from: k, to: k + 1 }); k++; }
      from = k;
      j = k;
      continue;
    }
    j++;
  }
  out.push({ t: 'str', from, to: Math.min(src.length, j + 1) });
  return out.filter((t) => t.to > t.from);
}

const TERA_KEYWORDS = new Set(['if', 'elif', 'else', 'endif', 'for', 'in', 'endfor', 'set', 'set_global', 'block', 'endblock',
  'macro', 'endmacro', 'include', 'import', 'extends', 'filter', 'endfilter', 'raw', 'endraw', 'and', 'or', 'not', 'is',
  'as', 'loop', 'break', 'continue', 'true', 'false', 'with', 'endwith']);

/** Tera: plain text outside `{{ }}`, `{% %}` and `{# #}`; inside, words, strings and numbers. @param {string} src @returns {Token[]} */
export function tera(src) {
  /** @type {Token[]} */
  const out = [];
  const n = src.length;
  let i = 0;
  while (i < n) {
    const open = src.indexOf('{', i);
    if (open < 0) break;
    const kind = src[open + 1];
    if (kind === '#') {
      const end = src.indexOf('#}', open + 2);
      const to = end < 0 ? n : end + 2;
      out.push({ t: 'com', from: open, to });
      i = to;
      continue;
    }
    if (kind !== '{' && kind !== '%') { i = open + 1; continue; }
    const close = kind === '{' ? '}}' : '%}';
    let j = open + 2;
    if (src[j] === '-') j++;
    out.push({ t: 'tag', from: open, to: j });
    let end = src.indexOf(close, j);
    if (end < 0) end = n;
    const inner = end > j && src[end - 1] === '-' ? end - 1 : end;
    let after = '';
    for (const tok of rhai(src.slice(j, inner))) {
      const word = src.slice(j + tok.from, j + tok.to);
      let t = tok.t;
      if (t === 'id' || t === 'kw' || t === 'lit' || t === 'fn') t = TERA_KEYWORDS.has(word) ? 'kw' : after === '|' ? 'fn' : 'id';
      out.push({ t, from: j + tok.from, to: j + tok.to });
      after = word;
    }
    if (end < n) out.push({ t: 'tag', from: inner, to: end + 2 });
    i = end + 2;
  }
  return out;
}

const SQL_KEYWORDS = new Set(('select from where and or not in is null as join left right inner outer full cross on using ' +
  'group by order having limit offset insert into values update set delete returning with distinct union all except ' +
  'intersect case when then else end exists between like ilike asc desc nulls first last cast true false coalesce ' +
  'count sum avg min max lower upper now interval any array').split(' '));

/** SQL: comments, strings, numbers, keywords (any case), `$1` and `:name` parameters. @param {string} src @returns {Token[]} */
export function sql(src) {
  /** @type {Token[]} */
  const out = [];
  const n = src.length;
  let i = 0;
  const push = (/** @type {string} */ t, /** @type {number} */ to) => { out.push({ t, from: i, to }); i = to; };
  while (i < n) {
    const c = src[i];
    if (/\s/.test(c)) { i++; continue; }
    if (c === '-' && src[i + 1] === '-') { push('com', lineEnd(src, i)); continue; }
    if (c === '/' && src[i + 1] === '*') { push('com', blockEnd(src, i)); continue; }
    if (c === "'") { push('str', sqlStringEnd(src, i)); continue; }
    if (c === '"') { push('id', stringEnd(src, i, '"', true)); continue; }
    if ((c === '$' || c === ':') && /[A-Za-z0-9_]/.test(src[i + 1] || '') && src[i - 1] !== ':') {
      let j = i + 1;
      while (j < n && WORD.test(src[j])) j++;
      push('var', j);
      continue;
    }
    if (c >= '0' && c <= '9') { push('num', i + (NUMBER.exec(src.slice(i, i + 64))?.[0].length || 1)); continue; }
    if (WORD.test(c)) {
      let j = i + 1;
      while (j < n && WORD.test(src[j])) j++;
      push(SQL_KEYWORDS.has(src.slice(i, j).toLowerCase()) ? 'kw' : 'id', j);
      continue;
    }
    if ('()[]{}'.includes(c)) { push('br', i + 1); continue; }
    push('op', i + 1);
  }
  return out;
}

/** No highlighting. @returns {Token[]} */
export const plain = () => [];

/** The tokenizer for a language name (`rhai`, `tera`, `sql`; anything else is plain). */
export const TOKENIZERS = /** @type {Record<string, (src: string) => Token[]>} */ ({ rhai, tera, sql, plain });

/** @param {string} src @param {number} i */
function lineEnd(src, i) {
  const j = src.indexOf('\n', i);
  return j < 0 ? src.length : j;
}

/** @param {string} src @param {number} i */
function blockEnd(src, i) {
  const j = src.indexOf('*/', i + 2);
  return j < 0 ? src.length : j + 2;
}

/** The end of a string opened at `i` by `q`; single-line unless `multi`. @param {string} src @param {number} i @param {string} q @param {boolean} multi */
function stringEnd(src, i, q, multi) {
  let j = i + 1;
  while (j < src.length && src[j] !== q) {
    if (src[j] === '\\') j++;
    else if (src[j] === '\n' && !multi) return j;
    j++;
  }
  return Math.min(src.length, j + 1);
}

/** SQL strings double a quote to escape it. @param {string} src @param {number} i */
function sqlStringEnd(src, i) {
  let j = i + 1;
  while (j < src.length) {
    if (src[j] === "'" && src[j + 1] === "'") j += 2;
    else if (src[j] === "'") return j + 1;
    else j++;
  }
  return src.length;
}

/**
 * The partner of the bracket just before or at `caret` (strings and comments skipped), as
 * `[this bracket, its partner]` offsets, or null.
 * @param {string} src @param {Token[]} tokens @param {number} caret
 * @returns {[number, number] | null}
 */
export function matchBracket(src, tokens, caret) {
  const brackets = tokens.filter((t) => t.t === 'br');
  const find = (/** @type {number} */ pos, /** @type {string} */ chars) =>
    brackets.findIndex((t) => t.from === pos && chars.includes(src[t.from]));
  // A closing bracket just typed wins; then the bracket at the caret; then an opening one before it.
  let index = find(caret - 1, ')]}');
  if (index < 0) index = find(caret, '()[]{}');
  if (index < 0) index = find(caret - 1, '([{');
  if (index < 0) return null;
  const open = '([{', close = ')]}';
  const ch = src[brackets[index].from];
  const forward = open.includes(ch);
  const want = forward ? close[open.indexOf(ch)] : open[close.indexOf(ch)];
  let depth = 0;
  for (let k = index + (forward ? 1 : -1); k >= 0 && k < brackets.length; k += forward ? 1 : -1) {
    const c = src[brackets[k].from];
    if (c === ch) depth++;
    else if (c === want) {
      if (depth === 0) return [brackets[index].from, brackets[k].from];
      depth--;
    }
  }
  return null;
}
