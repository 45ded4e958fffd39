// @ts-check
// The side inspector: a form generated from the selected node type's JSON Schema (or the
// endpoint settings when nothing is selected), with the server's diagnostics shown under the
// field they point into. Edits write straight into the document through `host.change`.

import { isSlug } from './model.js';
import { fmtUs } from './canvas.js';

/**
 * @typedef {{
 *   doc: () => any, types: Map<string, any>,
 *   change: (fn: (doc: any) => void, opts?: {canvas?: boolean}) => void,
 *   snapshot: () => void,
 *   rename: (from: string, to: string) => boolean,
 *   remove: (ids: string[]) => void,
 *   traceOf: (id: string) => any,
 * }} InspectorHost
 */

let uid = 0;
/** @param {string} tag @param {string} [cls] @param {string} [text] */
function h(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== undefined) el.textContent = text;
  return el;
}

const esc = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Renders the inspector for `ids` (one node id, or none for the flow settings).
 * @param {HTMLElement} panel @param {InspectorHost} host @param {string[]} ids
 */
export function renderInspector(panel, host, ids) {
  panel.replaceChildren();
  panel.addEventListener('focusin', onFocus);
  const doc = host.doc();
  if (ids.length > 1) {
    panel.append(h('h2', 'fl-insp-title', `${ids.length} nodes selected`));
    panel.append(h('p', 'fl-hint', 'Drag to move them together, Ctrl+C to copy, Delete to remove.'));
    const del = h('button', 'fl-btn fl-danger', 'Delete selected nodes');
    del.addEventListener('click', () => host.remove(ids));
    panel.append(del);
    return;
  }
  const id = ids[0];
  const node = id ? doc.nodes[id] : undefined;
  if (!node) return flowSettings(panel, host);
  const type = host.types.get(node.type);
  const title = h('h2', 'fl-insp-title');
  title.append(h('span', 'fl-type-chip', node.type), ' ', type?.title || '');
  panel.append(title);
  panel.append(h('div', 'fl-diag fl-diag-general'));
  /** @type {HTMLElement} */ (panel.lastChild).dataset.pointer = `/nodes/${esc(id)}`;
  /** @type {HTMLElement} */ (panel.lastChild).dataset.exact = '1';

  // Id (renames update every reference).
  const idField = field(panel, 'Node id', `/nodes/${esc(id)}#id`, 'Stable slug: lowercase letters, digits, _');
  const idInput = /** @type {HTMLInputElement} */ (h('input', 'fl-input'));
  idInput.value = id;
  idInput.spellcheck = false;
  idInput.addEventListener('change', () => {
    const to = idInput.value.trim();
    if (!isSlug(to)) { idInput.setCustomValidity('lowercase letters, digits and _, starting with a letter'); idInput.reportValidity(); return; }
    if (!host.rename(id, to)) { idInput.setCustomValidity(`a node named ${to} exists`); idInput.reportValidity(); idInput.value = id; }
  });
  idInput.addEventListener('input', () => idInput.setCustomValidity(''));
  idField.control(idInput);

  const props = type?.schema?.properties || {};
  const required = new Set(type?.schema?.required || []);
  const order = Object.keys(props).filter((k) => !['type', 'v', 'next'].includes(k));
  order.sort((a, b) => rank(a, required) - rank(b, required));
  for (const name of order) {
    editor(panel, host, props[name], name, required.has(name), `/nodes/${esc(id)}/${esc(name)}`,
      () => host.doc().nodes[id]?.[name],
      (v) => host.change((d) => {
        const n = d.nodes[id];
        if (v === undefined) delete n[name]; else n[name] = v;
      }, { canvas: name === 'cases' || name === 'status' || name === 'code' && node.type === 'fail' }));
  }

  const t = host.traceOf(id);
  if (t) panel.append(traceSection(t));

  const del = h('button', 'fl-btn fl-danger', 'Delete node');
  del.addEventListener('click', () => host.remove([id]));
  panel.append(del);
}

const rank = (name, required) => (name === 'as' ? 0 : required.has(name) ? 1 : name === 'description' ? 3 : 2);

/** Takes one undo snapshot per focused field. @param {FocusEvent} e */
function onFocus(e) {
  const panel = /** @type {any} */ (e.currentTarget);
  const t = /** @type {HTMLElement} */ (e.target);
  if (t.matches('input, textarea, select') && panel.__host) panel.__host.snapshot();
}

/**
 * A labelled field with a place for its diagnostics.
 * @param {HTMLElement} parent @param {string} label @param {string} pointer @param {string} [help]
 */
function field(parent, label, pointer, help) {
  const wrap = h('div', 'fl-field');
  const lab = /** @type {HTMLLabelElement} */ (h('label', 'fl-label', label));
  const fid = `fl-f${++uid}`;
  lab.htmlFor = fid;
  wrap.append(lab);
  const diag = h('div', 'fl-diag');
  diag.dataset.pointer = pointer;
  diag.id = `${fid}-diag`;
  diag.setAttribute('aria-live', 'polite');
  parent.append(wrap);
  return {
    wrap,
    /** @param {HTMLElement} el */
    control(el) {
      el.id = fid;
      el.setAttribute('aria-describedby', diag.id);
      wrap.append(el);
      if (help) wrap.append(h('div', 'fl-help', help));
      wrap.append(diag);
    },
  };
}

/**
 * A widget for one schema property.
 * @param {HTMLElement} parent @param {InspectorHost} host @param {any} schema @param {string} name
 * @param {boolean} required @param {string} pointer @param {() => any} get @param {(v: any) => void} set
 */
function editor(parent, host, schema, name, required, pointer, get, set) {
  /** @type {any} */ (parent.closest('.fl-inspector') || parent).__host = host;
  const label = `${name}${required ? ' *' : ''}`;
  const f = field(parent, label, pointer, schema.description);
  const value = get();
  if (schema.const !== undefined) return;
  if (schema.type === undefined && !schema.enum) return f.control(valueWidget(value, set, name));
  if (schema.enum) {
    const sel = /** @type {HTMLSelectElement} */ (h('select', 'fl-input'));
    if (!required) sel.append(new Option('(default)', ''));
    for (const v of schema.enum) sel.append(new Option(String(v), String(v)));
    sel.value = value === undefined ? '' : String(value);
    sel.addEventListener('change', () => set(sel.value === '' ? undefined : schema.enum.find((v) => String(v) === sel.value)));
    return f.control(sel);
  }
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  if (type === 'boolean') {
    const box = /** @type {HTMLInputElement} */ (h('input'));
    box.type = 'checkbox';
    box.checked = value === true;
    box.addEventListener('change', () => set(box.checked ? true : undefined));
    return f.control(box);
  }
  if (type === 'integer' || type === 'number') {
    const inp = /** @type {HTMLInputElement} */ (h('input', 'fl-input'));
    inp.type = 'number';
    if (schema.minimum !== undefined) inp.min = String(schema.minimum);
    if (schema.maximum !== undefined) inp.max = String(schema.maximum);
    inp.step = type === 'integer' ? '1' : 'any';
    inp.value = value === undefined ? '' : String(value);
    inp.addEventListener('input', () => set(inp.value === '' ? undefined : Number(inp.value)));
    return f.control(inp);
  }
  if (type === 'string') {
    const code = name === 'code' && /rhai/i.test(schema.description || '') || name === 'template' || name === 'sql';
    const long = code || (schema.maxLength || 0) > 300;
    const inp = /** @type {HTMLInputElement|HTMLTextAreaElement} */ (h(long ? 'textarea' : 'input', code ? 'fl-input fl-code' : 'fl-input'));
    inp.spellcheck = !code && name === 'description';
    if (code) codeArea(/** @type {HTMLTextAreaElement} */ (inp));
    inp.value = value ?? '';
    inp.addEventListener('input', () => set(inp.value === '' && !required ? undefined : inp.value));
    return f.control(inp);
  }
  // Objects and arrays: JSON text, applied when it parses.
  return f.control(jsonArea(value, set, type === 'array' ? '[]' : '{}'));
}

/** A node value: a Rhai expression or a JSON literal. */
function valueWidget(value, set, name) {
  const wrap = h('div', 'fl-value');
  const isExpr = value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 1 && typeof value.$rhai === 'string';
  const modes = h('div', 'fl-seg');
  modes.setAttribute('role', 'radiogroup');
  modes.setAttribute('aria-label', `${name}: expression or JSON`);
  const exprBtn = h('button', 'fl-seg-btn', 'ƒ expression');
  const jsonBtn = h('button', 'fl-seg-btn', '{ } JSON');
  for (const b of [exprBtn, jsonBtn]) { b.type = 'button'; b.setAttribute('role', 'radio'); }
  modes.append(exprBtn, jsonBtn);
  const expr = /** @type {HTMLTextAreaElement} */ (h('textarea', 'fl-input fl-code'));
  codeArea(expr);
  expr.rows = 2;
  expr.setAttribute('aria-label', `${name} (Rhai expression)`);
  expr.value = isExpr ? value.$rhai : '';
  expr.addEventListener('input', () => set(expr.value === '' ? undefined : { $rhai: expr.value }));
  const json = jsonArea(isExpr ? undefined : value, set, '');
  json.setAttribute('aria-label', `${name} (JSON)`);
  const show = (e) => {
    expr.hidden = !e; json.hidden = e;
    exprBtn.setAttribute('aria-checked', String(e)); jsonBtn.setAttribute('aria-checked', String(!e));
    exprBtn.classList.toggle('is-on', e); jsonBtn.classList.toggle('is-on', !e);
  };
  exprBtn.addEventListener('click', () => { show(true); if (expr.value) set({ $rhai: expr.value }); expr.focus(); });
  jsonBtn.addEventListener('click', () => { show(false); json.focus(); });
  show(isExpr || value === undefined);
  wrap.append(modes, expr, json);
  // Labels point at the visible control.
  Object.defineProperty(wrap, 'id', { set: (v) => { expr.id = v; }, get: () => expr.id });
  return wrap;
}

/** @param {any} value @param {(v: any) => void} set @param {string} empty */
function jsonArea(value, set, empty) {
  const ta = /** @type {HTMLTextAreaElement} */ (h('textarea', 'fl-input fl-code'));
  codeArea(ta);
  ta.value = value === undefined ? empty : JSON.stringify(value, null, 2);
  ta.rows = Math.min(12, Math.max(2, ta.value.split('\n').length));
  const err = h('div', 'fl-json-error');
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

/** Tab indents in code areas instead of leaving the field; Escape then Tab leaves. @param {HTMLTextAreaElement} ta */
function codeArea(ta) {
  ta.spellcheck = false;
  ta.setAttribute('autocapitalize', 'off');
  ta.setAttribute('autocomplete', 'off');
  let escaped = false;
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { escaped = true; return; }
    if (e.key === 'Tab' && !e.shiftKey && !escaped) {
      e.preventDefault();
      ta.setRangeText('  ', ta.selectionStart, ta.selectionEnd, 'end');
      ta.dispatchEvent(new Event('input'));
    }
    escaped = false;
  });
}

/** The selected node's part of the last run. @param {any} t */
function traceSection(t) {
  const sec = h('section', t.failed ? 'fl-trace fl-trace-failed' : 'fl-trace');
  sec.append(h('h3', '', 'Last run'));
  const dl = h('dl');
  const row = (k, v) => { dl.append(h('dt', '', k)); const dd = h('dd'); dd.append(v); dl.append(dd); };
  row('port', t.port || (t.failed ? 'failed' : 'ended the request'));
  row('time', fmtUs(t.duration_us));
  if (t.error) row('error', pre(t.error));
  if (t.input !== undefined) row('input', pre(t.input));
  if (t.output !== undefined) row('output', pre(t.output));
  sec.append(dl);
  return sec;
}

const pre = (v) => h('pre', 'fl-pre', typeof v === 'string' ? v : JSON.stringify(v, null, 2));

/** The endpoint and flow-level settings, edited when no node is selected. */
function flowSettings(panel, host) {
  const doc = host.doc();
  panel.append(h('h2', 'fl-insp-title', doc.endpoint ? 'Endpoint' : 'Function'));
  panel.append(h('p', 'fl-hint', 'Select a node to edit it. Drag node types from the palette onto the canvas.'));
  const general = h('div', 'fl-diag fl-diag-general');
  general.dataset.pointer = '';
  general.dataset.exact = '1';
  panel.append(general);
  /** @type {any} */ (panel).__host = host;
  const str = (label, pointer, get, set, help) => {
    const f = field(panel, label, pointer, help);
    const inp = /** @type {HTMLInputElement} */ (h('input', 'fl-input'));
    inp.value = get() ?? '';
    inp.spellcheck = false;
    inp.addEventListener('input', () => host.change((d) => set(d, inp.value)));
    f.control(inp);
    return inp;
  };
  str('Name *', '/name', () => doc.name, (d, v) => { d.name = v; }, 'Slug; also the export file name.');
  if (doc.endpoint) {
    const m = field(panel, 'Method *', '/endpoint/method');
    const sel = /** @type {HTMLSelectElement} */ (h('select', 'fl-input'));
    for (const v of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) sel.append(new Option(v, v));
    sel.value = doc.endpoint.method || 'GET';
    sel.addEventListener('change', () => host.change((d) => { d.endpoint.method = sel.value; }));
    m.control(sel);
    str('Path *', '/endpoint/path', () => doc.endpoint.path, (d, v) => { d.endpoint.path = v; }, 'Served under /api, e.g. /todos/{id}');
    const a = field(panel, 'Auth', '/endpoint/auth', 'Who may call it: anyone, a signed-in end user, or an admin.');
    const auth = /** @type {HTMLSelectElement} */ (h('select', 'fl-input'));
    for (const v of ['public', 'user', 'admin']) auth.append(new Option(v, v));
    auth.value = doc.endpoint.auth || 'public';
    auth.addEventListener('change', () => host.change((d) => { if (auth.value === 'public') delete d.endpoint.auth; else d.endpoint.auth = auth.value; }));
    a.control(auth);
    str('Group', '/endpoint/group', () => doc.endpoint.group, (d, v) => { if (v) d.endpoint.group = v; else delete d.endpoint.group; }, 'Optional API group slug.');
    const sb = field(panel, 'Sandbox', '/endpoint/sandbox',
      'On: pages this endpoint serves run in an opaque origin, so a script injected into them cannot act as you. Turn off only when the editor has its own address.');
    const sandbox = /** @type {HTMLSelectElement} */ (h('select', 'fl-input'));
    sandbox.append(new Option('on (default)', 'on'), new Option('off (editor\u2019s origin)', 'off'));
    sandbox.value = doc.endpoint.sandbox === false ? 'off' : 'on';
    sandbox.addEventListener('change', () => host.change((d) => { if (sandbox.value === 'on') delete d.endpoint.sandbox; else d.endpoint.sandbox = false; }));
    sb.control(sandbox);
  }
  const descF = field(panel, 'Description', '/description');
  const desc = /** @type {HTMLTextAreaElement} */ (h('textarea', 'fl-input'));
  desc.rows = 2;
  desc.value = doc.description ?? '';
  desc.addEventListener('input', () => host.change((d) => { if (desc.value) d.description = desc.value; else delete d.description; }));
  descF.control(desc);
  for (const part of doc.endpoint ? ['params', 'query', 'body'] : ['body']) {
    editor(panel, host, { type: 'object', description: `JSON Schema for the request ${part}.` }, `input.${part}`, false, `/input/${part}`,
      () => host.doc().input?.[part],
      (v) => host.change((d) => {
        d.input = d.input || {};
        if (v === undefined) delete d.input[part]; else d.input[part] = v;
        if (!Object.keys(d.input).length) delete d.input;
      }));
  }
  editor(panel, host, { type: 'object', description: 'timeout_ms, rate_limit, ...' }, 'settings', false, '/settings',
    () => host.doc().settings, (v) => host.change((d) => { if (v === undefined) delete d.settings; else d.settings = v; }));
}

/**
 * Puts each diagnostic under the deepest field whose pointer contains it; the rest go to the
 * general box. Updates in place so typing keeps focus.
 * @param {HTMLElement} panel @param {any[]} diags
 */
export function showDiagnostics(panel, diags) {
  const boxes = [...panel.querySelectorAll('.fl-diag')].map((el) => /** @type {HTMLElement} */ (el));
  for (const b of boxes) { b.replaceChildren(); b.closest('.fl-field')?.classList.remove('has-problem'); }
  for (const b of boxes) {
    const ctl = b.parentElement?.querySelector('[aria-invalid="diag"]');
    if (ctl) ctl.removeAttribute('aria-invalid');
  }
  const general = boxes.find((b) => b.classList.contains('fl-diag-general'));
  for (const d of diags) {
    const p = d.pointer || '';
    let best = null;
    for (const b of boxes) {
      const bp = (b.dataset.pointer || '').replace(/#.*$/, '');
      if (b.dataset.exact || b.dataset.pointer?.includes('#')) continue;
      if ((p === bp || p.startsWith(bp + '/')) && (!best || bp.length > (best.dataset.pointer || '').length)) best = b;
    }
    const target = best || (general && (p === general.dataset.pointer || p.startsWith((general.dataset.pointer || '') + '/') || general.dataset.pointer === '') ? general : null);
    if (!target) continue;
    const item = h('div', 'fl-diag-item');
    const where = d.line ? `line ${d.line}, column ${d.column}: ` : '';
    item.textContent = `${where}${d.message}`;
    item.title = `${d.code} at ${p || '/'}`;
    target.append(item);
    target.closest('.fl-field')?.classList.add('has-problem');
  }
}
