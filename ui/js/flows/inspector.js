// @ts-check
/**
 * The side inspector: a form generated from the selected node type's JSON Schema (or the
 * endpoint settings when nothing is selected), with the server's diagnostics shown under the
 * field they point into. Which control a property gets is `widgets.js`'s choice (the schema's
 * `x-widget` hint, else its JSON type); no property is special-cased here by name. Edits go to
 * the flow state through `host.change`; this module holds no state of its own.
 */
import { h, uid } from '../dom.js';
import { isSlug } from './model.js';
import { drawnOnNode, fmtUs } from './canvas.js';
import { WIDGETS, widgetName } from './widgets.js';
import { inputSchemaForm } from './forms/inputschema.js';
import { settingsForm } from './forms/settings.js';
import { RUNS_ON, localZone, runsOn, scheduleForm, switchRunsOn, tableTriggerForm } from './forms/trigger.js';

/** What each input schema checks. */
const INPUT_HELP = /** @type {Record<string, string>} */ ({
  params: 'The path parameters ({name} in the path), checked before the first node runs.',
  query: 'The query string parameters; numbers and booleans are converted from text.',
  body: 'The JSON body the request must send.',
});
import { showCodeDiagnostics } from '../code/field.js';

/**
 * @typedef {{
 *   doc: () => any, types: Map<string, any>,
 *   change: (fn: (doc: any) => void, opts?: {canvas?: boolean}) => void,
 *   snapshot: () => void,
 *   rename: (from: string, to: string) => boolean,
 *   remove: (ids: string[]) => void,
 *   traceOf: (id: string) => any,
 *   tables?: () => any[], refreshTables?: () => Promise<any[]>,
 * }} InspectorHost
 */

const esc = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Renders the inspector for `ids` (one node id, or none for the flow settings).
 * @param {HTMLElement} panel @param {InspectorHost} host @param {string[]} ids
 */
export function renderInspector(panel, host, ids) {
  panel.replaceChildren();
  panel.addEventListener('focusin', onFocus);
  panel.addEventListener('keydown', keepFormKeys);
  const doc = host.doc();
  if (ids.length > 1) {
    panel.append(h('h2', { class: 'fl-insp-title', text: `${ids.length} nodes selected` }));
    panel.append(h('p', { class: 'fl-hint', text: 'Drag to move them together, Ctrl+C to copy, Delete to remove.' }));
    const del = h('button', { class: 'fl-btn fl-danger', text: 'Delete selected nodes' });
    del.addEventListener('click', () => host.remove(ids));
    panel.append(del);
    return;
  }
  const id = ids[0];
  const node = id ? doc.nodes[id] : undefined;
  if (!node) return flowSettings(panel, host);
  const type = host.types.get(node.type);
  const title = h('h2', { class: 'fl-insp-title' });
  title.append(h('span', { class: 'fl-type-chip', text: node.type }), ' ', type?.title || '');
  panel.append(title);
  panel.append(h('div', { class: 'fl-diag fl-diag-general' }));
  /** @type {HTMLElement} */ (panel.lastChild).dataset.pointer = `/nodes/${esc(id)}`;
  /** @type {HTMLElement} */ (panel.lastChild).dataset.exact = '1';

  // Id (renames update every reference).
  const idField = field(panel, 'Node id', `/nodes/${esc(id)}#id`, 'Stable slug: lowercase letters, digits, _');
  const idInput = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input' }));
  idInput.value = id;
  idInput.spellcheck = false;
  idInput.addEventListener('change', () => {
    const to = idInput.value.trim();
    if (!isSlug(to)) { idInput.setCustomValidity('lowercase letters, digits and _, starting with a letter'); idInput.reportValidity(); return; }
    if (!host.rename(id, to)) { idInput.setCustomValidity(`a node named ${to} exists`); idInput.reportValidity(); idInput.value = id; }
  });
  idInput.addEventListener('input', () => idInput.setCustomValidity(''));
  idField.control(idInput);

  /** @type {import('./widgets.js').FormContext} */
  const ctx = {
    doc: host.doc, node: () => host.doc().nodes[id], nodeId: id,
    // A host without the table list (another view reusing the inspector) gets empty forms, not errors.
    tables: () => host.tables?.() || [], refreshTables: () => host.refreshTables?.() || Promise.resolve([]),
    rerender: (focus) => {
      renderInspector(panel, host, ids);
      if (focus) /** @type {HTMLElement | null} */ (panel.querySelector(focus))?.focus();
    },
  };
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
      }, { canvas: drawnOnNode(node.type, name) }), ctx);
  }

  const t = host.traceOf(id);
  if (t) panel.append(traceSection(t));

  const del = h('button', { class: 'fl-btn fl-danger', text: 'Delete node' });
  del.addEventListener('click', () => host.remove([id]));
  panel.append(del);
}

const rank = (name, required) => (name === 'as' ? 0 : required.has(name) ? 1 : name === 'description' ? 3 : 2);

/**
 * Keys pressed on a button of a form (✕, + Condition, JSON) stay there: the canvas's shortcuts
 * would otherwise delete or nudge the selected node.
 * @param {KeyboardEvent} e
 */
function keepFormKeys(e) {
  const t = /** @type {HTMLElement} */ (e.target);
  if (e.ctrlKey || e.metaKey || !(t instanceof HTMLButtonElement) || !t.closest('.fm-form, .fm-source')) return;
  if (['Delete', 'Backspace', '+', '-', '='].includes(e.key) || e.key.startsWith('Arrow')) e.stopPropagation();
}

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
  const wrap = h('div', { class: 'fl-field' });
  const lab = /** @type {HTMLLabelElement} */ (h('label', { class: 'fl-label', text: label }));
  const fid = uid('fl-f');
  lab.htmlFor = fid;
  wrap.append(lab);
  const diag = h('div', { class: 'fl-diag' });
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
      if (help) wrap.append(h('div', { class: 'fl-help', text: help }));
      wrap.append(diag);
    },
  };
}

/**
 * A labelled widget for one schema property, chosen by `widgetName` (the `x-widget` hint, else
 * the JSON type).
 * @param {HTMLElement} parent @param {InspectorHost} host @param {any} schema @param {string} name
 * @param {boolean} required @param {string} pointer @param {() => any} get @param {(v: any) => void} set
 * @param {import('./widgets.js').FormContext} [ctx]
 */
function editor(parent, host, schema, name, required, pointer, get, set, ctx) {
  /** @type {any} */ (parent.closest('.fl-inspector') || parent).__host = host;
  const f = field(parent, `${name}${required ? ' *' : ''}`, pointer, schema.description);
  if (schema.const !== undefined) return;
  f.control(WIDGETS[widgetName(schema)]({ schema, name, required, value: get(), set, ctx }));
  f.wrap.dataset.prop = name;
}

/** The selected node's part of the last run. @param {any} t */
function traceSection(t) {
  const sec = h('section', { class: t.failed ? 'fl-trace fl-trace-failed' : 'fl-trace' });
  sec.append(h('h3', { text: 'Last run' }));
  const dl = h('dl');
  const row = (k, v) => { dl.append(h('dt', { text: k })); const dd = h('dd'); dd.append(v); dl.append(dd); };
  row('port', t.port || (t.failed ? 'failed' : 'ended the request'));
  row('time', fmtUs(t.duration_us));
  // The table's access rule the step's statement applied: why a list came back short.
  if (t.rule) row('access rule', `${t.rule}: only the rows it allows the caller`);
  if (t.error) row('error', pre(t.error));
  if (t.input !== undefined) row('input', pre(t.input));
  if (t.output !== undefined) row('output', pre(t.output));
  sec.append(dl);
  return sec;
}

const pre = (v) => h('pre', { class: 'fl-pre', tabindex: '0', text: typeof v === 'string' ? v : JSON.stringify(v, null, 2) });

/** The endpoint and flow-level settings, edited when no node is selected. */
function flowSettings(panel, host) {
  const doc = host.doc();
  const kind = runsOn(doc);
  const titles = /** @type {Record<string, string>} */ ({ endpoint: 'Endpoint', schedule: 'Scheduled flow', table: 'Table trigger', job: 'Background job', function: 'Function' });
  panel.append(h('h2', { class: 'fl-insp-title', text: titles[kind] }));
  panel.append(h('p', { class: 'fl-hint', text: 'Select a node to edit it. Drag node types from the palette onto the canvas.' }));
  const general = h('div', { class: 'fl-diag fl-diag-general' });
  general.dataset.pointer = '';
  general.dataset.exact = '1';
  panel.append(general);
  /** @type {any} */ (panel).__host = host;
  const str = (label, pointer, get, set, help) => {
    const f = field(panel, label, pointer, help);
    const inp = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input' }));
    inp.value = get() ?? '';
    inp.spellcheck = false;
    inp.addEventListener('input', () => host.change((d) => set(d, inp.value)));
    f.control(inp);
    return inp;
  };
  str('Name *', '/name', () => doc.name, (d, v) => { d.name = v; }, 'Slug; also the export file name.');
  // What runs the flow: switching keeps the nodes and drops what no longer applies.
  const ro = field(panel, 'Runs on', '/trigger',
    'An HTTP endpoint answers requests; a schedule, a table change or a background job runs it in the background (with retries); a function is called by other flows.');
  const runs = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fl-runs-on' }));
  for (const [v, l] of RUNS_ON) runs.append(new Option(l, v));
  runs.value = kind;
  runs.addEventListener('change', () => {
    host.change((d) => switchRunsOn(d, runs.value, localZone()));
    renderInspector(panel, host, []);
    /** @type {HTMLElement | null} */ (panel.querySelector('.fl-runs-on'))?.focus();
  });
  ro.control(runs);
  /** @type {import('./widgets.js').FormContext} */
  const tctx = {
    doc: host.doc, node: () => host.doc().trigger, nodeId: undefined,
    tables: () => host.tables?.() || [], refreshTables: () => host.refreshTables?.() || Promise.resolve([]),
    rerender: (focus) => {
      renderInspector(panel, host, []);
      if (focus) /** @type {HTMLElement | null} */ (panel.querySelector(focus))?.focus();
    },
  };
  const setTrigger = (/** @type {any} */ v) => host.change((d) => { d.trigger = v; });
  if (kind === 'schedule') {
    const f = field(panel, 'Schedule', '/trigger/cron');
    f.wrap.dataset.prop = 'trigger';
    f.control(scheduleForm({ value: doc.trigger, set: setTrigger }));
  } else if (kind === 'table') {
    const f = field(panel, 'Table change', '/trigger/table');
    f.wrap.dataset.prop = 'trigger';
    f.control(tableTriggerForm({ value: doc.trigger, set: setTrigger, ctx: tctx }));
  } else if (kind === 'job') {
    panel.append(h('p', { class: 'fl-help fl-job-help', text: 'Runs when a job.enqueue node (or the Jobs screen) enqueues it, with what it was given as `input`. A failed run is retried with backoff (settings below); a fail with a 4xx status discards it.' }));
  }
  /** @type {HTMLInputElement | null} */
  let pathInput = null;
  if (doc.endpoint) {
    const m = field(panel, 'Method *', '/endpoint/method');
    const sel = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input' }));
    for (const v of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) sel.append(new Option(v, v));
    sel.value = doc.endpoint.method || 'GET';
    sel.addEventListener('change', () => host.change((d) => { d.endpoint.method = sel.value; }));
    m.control(sel);
    pathInput = str('Path *', '/endpoint/path', () => doc.endpoint.path, (d, v) => { d.endpoint.path = v; }, 'Served under /api, e.g. /todos/{id}');
    const a = field(panel, 'Auth', '/endpoint/auth', 'Who may call it: anyone, a signed-in end user, or an admin.');
    const auth = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input' }));
    for (const v of ['public', 'user', 'admin']) auth.append(new Option(v, v));
    auth.value = doc.endpoint.auth || 'public';
    auth.addEventListener('change', () => host.change((d) => { if (auth.value === 'public') delete d.endpoint.auth; else d.endpoint.auth = auth.value; }));
    a.control(auth);
    str('Audience', '/endpoint/audience', () => doc.endpoint.audience, (d, v) => { if (v) d.endpoint.audience = v; else delete d.endpoint.audience; },
      'Which tokens it accepts (user and admin endpoints): those issued for this audience. Empty: api, the normal one. A password reset endpoint says password_reset.');
    str('Group', '/endpoint/group', () => doc.endpoint.group, (d, v) => { if (v) d.endpoint.group = v; else delete d.endpoint.group; }, 'Optional API group slug.');
    const sb = field(panel, 'Sandbox', '/endpoint/sandbox',
      'On: pages this endpoint serves run in an opaque origin, so a script injected into them cannot act as you. Turn off only when the editor has its own address.');
    const sandbox = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input' }));
    sandbox.append(new Option('on (default)', 'on'), new Option('off (editor\u2019s origin)', 'off'));
    sandbox.value = doc.endpoint.sandbox === false ? 'off' : 'on';
    sandbox.addEventListener('change', () => host.change((d) => { if (sandbox.value === 'on') delete d.endpoint.sandbox; else d.endpoint.sandbox = false; }));
    sb.control(sandbox);
    const cf = field(panel, 'Capture requests', '/settings/capture',
      'On: the request log keeps each logged request of this endpoint (secrets redacted), so the run panel can replay it.');
    const capture = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input' }));
    capture.append(new Option('off (default)', 'off'), new Option('on', 'on'));
    capture.value = doc.settings?.capture === true ? 'on' : 'off';
    capture.addEventListener('change', () => host.change((d) => {
      if (capture.value === 'on') d.settings = { ...(d.settings || {}), capture: true };
      else if (d.settings) { delete d.settings.capture; if (!Object.keys(d.settings).length) delete d.settings; }
    }));
    cf.control(capture);
  }
  const descF = field(panel, 'Description', '/description');
  const desc = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'fl-input' }));
  desc.rows = 2;
  desc.value = doc.description ?? '';
  desc.addEventListener('input', () => host.change((d) => { if (desc.value) d.description = desc.value; else delete d.description; }));
  descF.control(desc);
  // The request's input schemas, built field by field (`forms/inputschema.js`).
  const schemaForm = (/** @type {string} */ part) => inputSchemaForm({
    name: `input.${part}`, part, value: host.doc().input?.[part],
    pathParams: [...String(host.doc().endpoint?.path || '').matchAll(/\{([a-z][a-z0-9_]*)\}/g)].map((m) => m[1]),
    set: (v) => host.change((d) => {
      d.input = d.input || {};
      if (v === undefined) delete d.input[part]; else d.input[part] = v;
      if (!Object.keys(d.input).length) delete d.input;
    }),
  });
  for (const part of doc.endpoint ? ['params', 'query', 'body'] : kind === 'function' || kind === 'job' ? ['body'] : []) {
    const f = field(panel, `input.${part}`, `/input/${part}`, INPUT_HELP[part]);
    f.wrap.dataset.prop = `input.${part}`;
    let form = schemaForm(part);
    f.control(form);
    // The path's {params} get rows of their own: redraw them when the path changes.
    if (part === 'params') pathInput?.addEventListener('change', () => {
      const next = schemaForm(part);
      next.id = form.id;
      next.setAttribute('aria-describedby', form.getAttribute('aria-describedby') || '');
      form.replaceWith(next);
      form = next;
    });
  }
  const sf = field(panel, 'settings', '/settings', 'Timeout, where reads go, rate limits.');
  sf.wrap.dataset.prop = 'settings';
  sf.control(settingsForm({ value: host.doc().settings, trigger: !!doc.trigger, set: (v) => host.change((d) => { if (v === undefined) delete d.settings; else d.settings = v; }) }));
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
    const item = h('div', { class: 'fl-diag-item' });
    const where = d.line ? `line ${d.line}, column ${d.column}: ` : '';
    item.textContent = `${where}${d.message}`;
    item.title = `${d.code} at ${p || '/'}`;
    target.append(item);
    target.closest('.fl-field')?.classList.add('has-problem');
  }
  showCodeDiagnostics(panel, diags);
}
