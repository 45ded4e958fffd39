// @ts-check
/**
 * The code field: a real `<textarea>` (the input: value, events, label, screen readers and
 * WebDriver all use it) laid transparently over a highlighted `<pre>` that mirrors its text,
 * with a gutter of line numbers. Adds bracket matching at the caret, completion of the names
 * in scope (`complete.js`), the server's diagnostics at their line and column (an underline on
 * the range, a marker in the gutter and the message beside the line), Tab / Shift+Tab to
 * indent and outdent, and Escape to leave: Escape closes the completion list first, then the
 * next Tab moves focus on, so focus is never trapped. Tokenizers are in `rhai.js`.
 */
import { h, uid } from '../dom.js';
import { TOKENIZERS, matchBracket } from './rhai.js';
import { candidates, contextAt, keyOf, namesAt } from './complete.js';

/** Line height and padding in px; code.css uses the same numbers. */
const LINE = 18;
const PAD_Y = 6;
const PAD_X = 8;
const INDENT = '  ';
/** How many completions show at once; the arrows move a window over the rest (a list that
 * scrolled would have to be focusable itself, and focus stays in the textarea). */
const VISIBLE = 10;

/**
 * A diagnostic as the field shows it (line and column 1-based, as the server sends them).
 * @typedef {{line: number, column: number, message: string}} FieldDiag
 */

/** @type {WeakMap<Element, CodeField>} */
const fields = new WeakMap();

/**
 * Makes `ta` a code field and returns the element to place in the form. The wrapper passes
 * its `id` and `aria-*` attributes on to the textarea, so a `<label for>` and
 * `aria-describedby` set on it reach the input.
 * @param {HTMLTextAreaElement} ta
 * @param {{lang?: string, minRows?: number, maxRows?: number, pointer?: string}} [o] `lang`:
 *   rhai (completion too), tera, sql or plain; `pointer`: the JSON pointer of the value in the
 *   flow document (its node's scope is completed, its diagnostics shown), by default the one
 *   of the inspector field around it
 * @returns {HTMLElement}
 */
export function codeField(ta, o = {}) {
  const f = new CodeField(ta, o.lang || 'plain', o.minRows || 3, o.maxRows || 24);
  if (o.pointer !== undefined) f.wrap.dataset.pointer = o.pointer;
  fields.set(f.wrap, f);
  forwardTo(f.wrap, ta);
  return f.wrap;
}

/**
 * Passes `id` and `aria-*` attributes set on `wrap` on to `input`.
 * @param {HTMLElement} wrap @param {HTMLElement} input
 */
export function forwardTo(wrap, input) {
  Object.defineProperty(wrap, 'id', { set: (v) => { input.id = v; }, get: () => input.id, configurable: true });
  const own = wrap.setAttribute.bind(wrap);
  wrap.setAttribute = (k, v) => (k.startsWith('aria-') ? input.setAttribute(k, v) : own(k, v));
}

/**
 * Shows each diagnostic with a line under the code field its pointer names (a field's own
 * pointer, or its pointer plus `/$rhai` for an expression).
 * @param {HTMLElement} panel @param {any[]} diags
 */
export function showCodeDiagnostics(panel, diags) {
  for (const el of panel.querySelectorAll('.cf')) {
    const f = fields.get(el);
    const p = f?.pointer();
    if (!f || p === null) continue;
    f.setDiagnostics(diags.filter((d) => d.line && (d.pointer === p || d.pointer === `${p}/$rhai`)));
  }
}

/**
 * Tab indents and Shift+Tab outdents the selected lines; Escape, then Tab (or Shift+Tab)
 * leaves. Enough for JSON areas; the code field adds the rest.
 * @param {HTMLTextAreaElement} ta
 */
export function indentKeys(ta) {
  let escaped = false;
  ta.addEventListener('keydown', (e) => {
    if (['Shift', 'Control', 'Alt', 'Meta'].includes(e.key)) return;
    if (e.key === 'Escape') { escaped = true; e.stopPropagation(); return; }
    if (e.key === 'Tab' && !escaped && !e.ctrlKey && !e.altKey && !e.metaKey) {
      e.preventDefault();
      indent(ta, e.shiftKey);
    }
    escaped = false;
  });
  ta.addEventListener('blur', () => { escaped = false; });
}

/**
 * Replaces `from..to` with `text` through the browser's editing, so Ctrl+Z undoes it, then
 * selects `selFrom..selTo`. Fires `input`.
 * @param {HTMLTextAreaElement} ta @param {number} from @param {number} to @param {string} text
 * @param {number} selFrom @param {number} [selTo]
 */
function replaceText(ta, from, to, text, selFrom, selTo = selFrom) {
  ta.setSelectionRange(from, to);
  const before = ta.value;
  // execCommand keeps the undo history; where it is missing, set the text directly.
  const done = document.execCommand?.('insertText', false, text) && ta.value !== before;
  if (!done && !(text === '' && from === to)) {
    ta.setRangeText(text, from, to, 'end');
    ta.dispatchEvent(new InputEvent('input', { bubbles: true, inputType: 'insertReplacementText' }));
  }
  ta.setSelectionRange(selFrom, selTo);
}

/** Indents (or outdents) the lines of the selection; a caret alone gets two spaces. @param {HTMLTextAreaElement} ta @param {boolean} out */
function indent(ta, out) {
  const v = ta.value;
  const s = ta.selectionStart, e = ta.selectionEnd;
  if (!out && !v.slice(s, e).includes('\n')) { replaceText(ta, s, e, INDENT, s + INDENT.length); return; }
  const from = v.lastIndexOf('\n', s - 1) + 1;
  let to = v.indexOf('\n', e > s && v[e - 1] === '\n' ? e - 1 : e);
  if (to < 0) to = v.length;
  const lines = v.slice(from, to).split('\n');
  const removed = lines.map((l) => (out ? (/^( {1,2}|\t)/.exec(l)?.[0].length || 0) : 0));
  const text = lines.map((l, i) => (out ? l.slice(removed[i]) : INDENT + l)).join('\n');
  if (text === v.slice(from, to)) return;
  if (s === e) replaceText(ta, from, to, text, Math.max(from, s - removed[0]));
  else replaceText(ta, from, to, text, from, from + text.length);
}

class CodeField {
  /**
   * @param {HTMLTextAreaElement} ta @param {string} lang @param {number} minRows @param {number} maxRows
   */
  constructor(ta, lang, minRows, maxRows) {
    this.ta = ta;
    this.lang = lang;
    this.tokenize = TOKENIZERS[lang] || TOKENIZERS.plain;
    this.minRows = minRows;
    this.maxRows = maxRows;
    /** @type {FieldDiag[]} */
    this.diags = [];
    /** @type {import('./rhai.js').Token[]} */
    this.tokens = [];
    /** Where each line starts in the text. */
    this.lineStarts = [0];
    /** The text the tokens, gutter and marks were drawn for (null: draw again). @type {string | null} */
    this.text = null;
    /** The line count and marked lines the gutter shows. */
    this.gutterFor = '';
    this.escaped = false;
    /** Set while the field edits the text itself, so that edit opens no completion. */
    this.editing = false;
    /** @type {{from: number, word: string, path: string[] | null} | null} */
    this.ctx = null;
    /** @type {import('./complete.js').Candidate[]} */
    this.items = [];
    this.active = 0;
    /** The first completion shown. */
    this.top = 0;
    this.charWidth = 0;

    ta.classList.add('cf-input');
    ta.spellcheck = false;
    ta.wrap = 'off';
    ta.setAttribute('autocapitalize', 'off');
    ta.setAttribute('autocomplete', 'off');
    this.listId = uid('cf-list');
    this.gutterLines = h('div', { class: 'cf-gutter-lines' });
    this.gutter = h('div', { class: 'cf-gutter', 'aria-hidden': 'true' }, this.gutterLines);
    this.pre = h('pre', { class: 'cf-hl', 'aria-hidden': 'true' });
    this.lenses = h('div', { class: 'cf-lenses', 'aria-hidden': 'true' });
    this.main = h('div', { class: 'cf-main' }, this.pre, this.lenses, ta);
    this.list = h('ul', { class: 'cf-list', role: 'listbox', id: this.listId, 'aria-label': 'Completions' });
    this.list.hidden = true;
    this.wrap = h('div', { class: 'cf', dataset: { lang } }, this.gutter, this.main, this.list);
    if (lang === 'rhai') {
      ta.setAttribute('aria-autocomplete', 'list');
      ta.setAttribute('aria-controls', this.listId);
    }

    ta.addEventListener('keydown', (e) => this.onKey(e));
    ta.addEventListener('input', (e) => this.onInput(/** @type {InputEvent} */ (e)));
    ta.addEventListener('scroll', () => this.syncScroll());
    for (const ev of ['keyup', 'mouseup', 'focus', 'select', 'selectionchange']) ta.addEventListener(ev, () => this.refresh());
    ta.addEventListener('blur', () => { this.close(); this.escaped = false; this.refresh(); });
    // A click on the line numbers puts the caret at the start of that line.
    this.gutter.addEventListener('mousedown', (e) => {
      e.preventDefault();
      const row = /** @type {HTMLElement} */ (e.target).closest('.cf-ln');
      const line = row ? Number(row.textContent) - 1 : this.lineStarts.length - 1;
      const at = this.lineStarts[Math.max(0, Math.min(line, this.lineStarts.length - 1))];
      ta.focus();
      ta.setSelectionRange(at, at);
      this.refresh();
    });
    // Picking from the list with the mouse keeps focus in the textarea.
    this.list.addEventListener('mousedown', (e) => e.preventDefault());
    this.list.addEventListener('click', (e) => {
      const li = /** @type {HTMLElement} */ (e.target).closest('li');
      if (li) { this.active = Number(li.dataset.i); this.accept(); }
    });
    queueMicrotask(() => this.refresh());
  }

  /** The JSON pointer of the value edited: the one given, else the inspector field's, else null. */
  pointer() {
    if (this.wrap.dataset.pointer !== undefined) return this.wrap.dataset.pointer;
    const box = /** @type {HTMLElement | null} */ (this.wrap.closest('.fl-field')?.querySelector(':scope > .fl-diag') || null);
    return box?.dataset.pointer ?? null;
  }

  /** @param {FieldDiag[]} list */
  setDiagnostics(list) {
    this.diags = list.map((d) => ({ line: d.line, column: d.column || 1, message: d.message }));
    this.text = null;
    this.refresh();
  }

  // ---- drawing ------------------------------------------------------------------------------

  /** Redraws what changed since the last call: tokens, gutter, height, marks. */
  refresh() {
    const src = this.ta.value;
    if (src !== this.text) {
      this.text = src;
      this.tokens = this.tokenize(src);
      this.lineStarts = [0];
      for (let i = src.indexOf('\n'); i >= 0; i = src.indexOf('\n', i + 1)) this.lineStarts.push(i + 1);
      this.drawGutter();
    }
    // As many lines as the text has, within bounds; a horizontal scrollbar adds its height.
    const rows = Math.max(this.minRows, Math.min(this.maxRows, this.lineStarts.length));
    this.ta.rows = rows;
    const bar = this.ta.offsetHeight - this.ta.clientHeight;
    if (this.ta.offsetHeight) this.ta.style.height = `${rows * LINE + 2 * PAD_Y + Math.max(0, bar)}px`;
    this.paint();
    this.syncScroll();
  }

  drawGutter() {
    const starts = this.lineStarts;
    const bad = new Map(this.diags.map((d) => [d.line, d.message]));
    const sig = `${starts.length}|${[...bad].join('|')}`;
    if (sig !== this.gutterFor) {
      this.gutterFor = sig;
      const rows = [];
      for (let i = 1; i <= starts.length; i++) {
        const row = h('div', { class: bad.has(i) ? 'cf-ln cf-ln-bad' : 'cf-ln', text: String(i) });
        if (bad.has(i)) row.title = String(bad.get(i));
        rows.push(row);
      }
      this.gutterLines.replaceChildren(...rows);
    }
    // Each message sits beside the end of its line, so it covers no code.
    const cw = this.measure();
    const src = this.ta.value;
    this.lenses.replaceChildren(...[...bad].filter(([line]) => line <= starts.length).map(([line, message]) => {
      const end = line < starts.length ? starts[line] - 1 : src.length;
      const lens = h('div', { class: 'cf-lens', text: message });
      lens.style.top = `${PAD_Y + (line - 1) * LINE}px`;
      lens.style.left = `${PAD_X + (end - starts[line - 1] + 2) * cw}px`;
      return lens;
    }));
  }

  /** The highlighted copy of the text, with the bracket pair at the caret and diagnostic ranges. */
  paint() {
    const src = this.ta.value;
    /** @type {{from: number, to: number, cls: string}[]} */
    const decos = [];
    if (document.activeElement === this.ta && this.ta.selectionStart === this.ta.selectionEnd) {
      const pair = matchBracket(src, this.tokens, this.ta.selectionStart);
      if (pair) for (const at of pair) decos.push({ from: at, to: at + 1, cls: 'cf-match' });
    }
    for (const d of this.diags) decos.push(this.range(d));
    paint(this.pre, src, this.tokens, decos);
  }

  /** The range a diagnostic underlines: the token at its position, else one character, else the line's end. @param {FieldDiag} d */
  range(d) {
    const starts = this.lineStarts;
    const src = this.ta.value;
    const line = Math.min(Math.max(1, d.line), starts.length);
    const lineEnd = line < starts.length ? starts[line] - 1 : src.length;
    const at = Math.min(starts[line - 1] + Math.max(0, d.column - 1), lineEnd);
    const tok = this.tokens.find((t) => t.from <= at && at < t.to);
    if (tok) return { from: tok.from, to: Math.min(tok.to, lineEnd), cls: 'cf-bad' };
    if (at < lineEnd) return { from: at, to: at + 1, cls: 'cf-bad' };
    return { from: at, to: at, cls: 'cf-bad-end' };
  }

  syncScroll() {
    const { scrollLeft: x, scrollTop: y } = this.ta;
    this.pre.style.transform = `translate(${-x}px, ${-y}px)`;
    this.lenses.style.transform = `translate(${-x}px, ${-y}px)`;
    this.gutterLines.style.transform = `translateY(${-y}px)`;
  }

  // ---- keys ---------------------------------------------------------------------------------

  /** @param {KeyboardEvent} e */
  onKey(e) {
    // Keys that compose a character (an input method) are the input method's.
    if (e.isComposing || ['Shift', 'Control', 'Alt', 'Meta'].includes(e.key)) return;
    const open = !this.list.hidden;
    if (open && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
      e.preventDefault();
      this.move(e.key === 'ArrowDown' ? 1 : -1);
      return;
    }
    if (open && (e.key === 'Enter' || e.key === 'Tab') && !e.shiftKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      this.accept();
      return;
    }
    if (e.key === 'Escape') {
      // The first Escape closes the list; with no list, the next Tab leaves the field.
      e.stopPropagation();
      if (open) { e.preventDefault(); this.close(); } else this.escaped = true;
      return;
    }
    if (e.key === ' ' && e.ctrlKey && this.lang === 'rhai') {
      e.preventDefault();
      this.complete(true);
      return;
    }
    if (e.key === 'Tab' && !e.ctrlKey && !e.altKey && !e.metaKey) {
      if (this.escaped) { this.escaped = false; return; }
      e.preventDefault();
      this.edit(() => indent(this.ta, e.shiftKey));
      return;
    }
    this.escaped = false;
    if (e.key === 'Enter' && !e.shiftKey && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      this.edit(() => this.newline());
    }
  }

  /** A new line with the indentation of the current one, one step more after an opening bracket. */
  newline() {
    const v = this.ta.value;
    const s = this.ta.selectionStart;
    const lineStart = v.lastIndexOf('\n', s - 1) + 1;
    let lead = /^[ \t]*/.exec(v.slice(lineStart, s))?.[0] || '';
    if (/[{([]\s*$/.test(v.slice(lineStart, s))) lead += INDENT;
    replaceText(this.ta, s, this.ta.selectionEnd, `\n${lead}`, s + 1 + lead.length);
  }

  /** Runs an edit the field makes itself. @param {() => void} fn */
  edit(fn) {
    this.editing = true;
    try { fn(); } finally { this.editing = false; }
    this.refresh();
  }

  /** @param {InputEvent} e */
  onInput(e) {
    this.refresh();
    if (this.lang !== 'rhai' || this.editing) return;
    const typed = e.inputType === 'insertText' && /^[A-Za-z0-9_.]+$/.test(e.data || '');
    const erased = e.inputType?.startsWith('delete') && !this.list.hidden;
    if (typed || erased) this.complete(false);
    else this.close();
  }

  // ---- completion ---------------------------------------------------------------------------

  /** Opens (or updates) the list for the word at the caret; `asked`: also with nothing typed. @param {boolean} asked */
  complete(asked) {
    const caret = this.ta.selectionStart;
    const src = this.ta.value;
    const ctx = this.ta.selectionStart === this.ta.selectionEnd ? contextAt(src, caret, this.tokens) : null;
    if (!ctx || (!asked && !ctx.word && !ctx.path)) { this.close(); return; }
    const items = candidates(ctx, namesAt(keyOf(this.pointer() || '')), src, caret);
    if (!items.length) { this.close(); return; }
    const same = this.ctx && this.ctx.from === ctx.from && !this.list.hidden;
    const keep = same ? this.items[this.active]?.label : undefined;
    this.ctx = ctx;
    this.items = items.slice(0, 50);
    this.active = Math.max(0, this.items.findIndex((c) => c.label === keep));
    this.top = 0;
    this.drawList();
    this.place();
  }

  drawList() {
    if (this.active < this.top) this.top = this.active;
    if (this.active >= this.top + VISIBLE) this.top = this.active - VISIBLE + 1;
    const shown = this.items.slice(this.top, this.top + VISIBLE);
    this.list.replaceChildren(...shown.map((c, k) => {
      const i = this.top + k;
      return h('li', {
        role: 'option', id: `${this.listId}-${i}`, class: i === this.active ? 'cf-opt is-active' : 'cf-opt',
        'aria-selected': String(i === this.active), 'aria-setsize': this.items.length, 'aria-posinset': i + 1,
        dataset: { i: String(i) },
      }, h('span', { class: 'cf-opt-label', text: c.label }), h('span', { class: 'cf-opt-detail', text: c.detail }));
    }));
    this.list.classList.toggle('has-above', this.top > 0);
    this.list.classList.toggle('has-below', this.top + VISIBLE < this.items.length);
    this.list.hidden = false;
    this.ta.setAttribute('aria-activedescendant', `${this.listId}-${this.active}`);
  }

  /** The width of one character of the code font (a guess until the field is shown). */
  measure() {
    if (!this.charWidth && this.wrap.isConnected) {
      const probe = h('span', { text: 'x'.repeat(40) });
      this.pre.append(probe);
      this.charWidth = probe.getBoundingClientRect().width / 40;
      probe.remove();
    }
    return this.charWidth || 7.5;
  }

  /** Puts the list under the caret. */
  place() {
    const cw = this.measure();
    const caret = this.ta.selectionStart;
    const starts = this.lineStarts;
    let line = 0;
    while (line + 1 < starts.length && starts[line + 1] <= caret) line++;
    const col = (this.ctx ? this.ctx.from : caret) - starts[line];
    const left = this.gutter.offsetWidth + PAD_X + col * cw - this.ta.scrollLeft;
    const top = this.main.offsetTop + PAD_Y + (line + 1) * LINE - this.ta.scrollTop;
    const max = Math.max(0, this.wrap.clientWidth - 220);
    this.list.style.left = `${Math.max(0, Math.min(left, max))}px`;
    this.list.style.top = `${top + 2}px`;
  }

  /** @param {number} by */
  move(by) {
    this.active = (this.active + by + this.items.length) % this.items.length;
    this.drawList();
  }

  accept() {
    const c = this.items[this.active];
    const ctx = this.ctx;
    this.close();
    if (!c || !ctx) return;
    const caret = this.ta.selectionStart;
    // The rest of the word after the caret is replaced too.
    const rest = /^[A-Za-z0-9_]*/.exec(this.ta.value.slice(caret))?.[0].length || 0;
    this.edit(() => replaceText(this.ta, ctx.from, caret + rest, c.insert, ctx.from + c.caret));
  }

  close() {
    if (this.list.hidden) return;
    this.list.hidden = true;
    this.list.replaceChildren();
    this.ta.removeAttribute('aria-activedescendant');
    this.ctx = null;
  }
}

/**
 * Fills `pre` with `src` as spans: one class per token kind (`cf-kw`, ...) plus the classes
 * of the marks over it; a mark with no length is an empty span.
 * @param {HTMLElement} pre @param {string} src @param {import('./rhai.js').Token[]} tokens
 * @param {{from: number, to: number, cls: string}[]} marks
 */
function paint(pre, src, tokens, marks) {
  const cuts = new Set([0, src.length]);
  for (const t of tokens) { cuts.add(t.from); cuts.add(t.to); }
  for (const m of marks) { cuts.add(m.from); cuts.add(m.to); }
  const points = [...cuts].filter((p) => p >= 0 && p <= src.length).sort((a, b) => a - b);
  const out = document.createDocumentFragment();
  let ti = 0;
  for (let k = 0; k < points.length; k++) {
    const a = points[k];
    for (const m of marks) if (m.from === a && m.to === a) out.append(h('span', { class: m.cls }));
    if (k + 1 === points.length) break;
    const b = points[k + 1];
    while (ti < tokens.length && tokens[ti].to <= a) ti++;
    const cls = [];
    if (ti < tokens.length && tokens[ti].from <= a) cls.push(`cf-${tokens[ti].t}`);
    for (const m of marks) if (m.from <= a && b <= m.to && m.from < m.to) cls.push(m.cls);
    const text = src.slice(a, b);
    out.append(cls.length ? h('span', { class: cls.join(' '), text }) : text);
  }
  // A last empty line still needs its height.
  if (src === '' || src.endsWith('\n')) out.append(' ');
  pre.replaceChildren(out);
}
