// @ts-check
/**
 * The run panel's request as a form, built from the endpoint's input schemas
 * (`doc.input.params/query/body`) and the `{param}` names of its path: one labelled control per
 * declared property (number, checkbox, select of an enum, text; a small JSON box for objects and
 * arrays), required ones marked. A part without declared properties is a JSON box. Path
 * parameters start with a sample value ({@link samplePathValues}) so a first run does not fail
 * for a missing parameter. `get()` reads the request, `set()` fills it (a replay); empty
 * optional controls are not sent. No server calls here except through `samplePathValues`.
 */
import { h, uid } from '../dom.js';
import { api } from '../api.js';

/** @typedef {{params: Record<string, any>, query: Record<string, any>, body: any}} RunInput */

/** `{name}` segments of an endpoint path, in order. @param {string} path */
export function pathParams(path) {
  return [...(path || '').matchAll(/\{([^}/]+)\}/g)].map((m) => m[1]);
}

/** Whether a schema type (a string or a list) includes `t`. @param {any} ty @param {string} t */
const isType = (ty, t) => ty === t || (Array.isArray(ty) && ty.includes(t));

/**
 * One control for a property: `{el, get, set, focus}`; `get` returns `undefined` when nothing
 * is to be sent.
 * @param {string} part 'params' | 'query' | 'body'
 * @param {string} name
 * @param {any} schema the property's JSON Schema
 * @param {boolean} required
 */
function control(part, name, schema, required) {
  const id = `fl-run-${part}-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const s = schema && typeof schema === 'object' ? schema : {};
  const label = h('label', { for: id }, name, required ? h('span', { class: 'fl-run-req', 'aria-hidden': 'true', text: ' *' }) : null);
  const hint = [s.type ? [].concat(s.type).join(' or ') : '', s.minimum !== undefined ? `≥ ${s.minimum}` : '', s.maximum !== undefined ? `≤ ${s.maximum}` : '',
    s.format || '', s.description || ''].filter(Boolean).join(' · ');
  const hintEl = hint ? h('span', { class: 'fl-run-hint', id: `${id}-hint`, text: hint }) : null;
  const common = { id, class: 'fl-input', 'aria-required': required ? 'true' : null, 'aria-describedby': hintEl ? `${id}-hint` : null, dataset: { part, name } };
  /** @type {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} */
  let input;
  /** @type {() => any} */ let get;
  /** @type {(v: any) => void} */ let set;
  if (Array.isArray(s.enum)) {
    const sel = /** @type {HTMLSelectElement} */ (h('select', common));
    if (!required) sel.append(new Option('(not sent)', ''));
    s.enum.forEach((/** @type {any} */ v, /** @type {number} */ i) => sel.append(new Option(String(v), String(i))));
    input = sel;
    get = () => (sel.value === '' ? undefined : s.enum[Number(sel.value)]);
    set = (v) => { const i = s.enum.findIndex((/** @type {any} */ e) => String(e) === String(v)); sel.value = i < 0 ? '' : String(i); };
  } else if (isType(s.type, 'boolean')) {
    const box = /** @type {HTMLInputElement} */ (h('input', { ...common, type: 'checkbox', class: 'fl-run-check' }));
    // An optional boolean is sent only once it was changed, so "not sent" stays possible.
    let touched = required;
    box.addEventListener('change', () => { touched = true; });
    input = box;
    get = () => (touched ? box.checked : undefined);
    set = (v) => { touched = v !== undefined; box.checked = v === true || v === 'true'; };
  } else if (isType(s.type, 'integer') || isType(s.type, 'number')) {
    const num = /** @type {HTMLInputElement} */ (h('input', { ...common, type: 'number', step: isType(s.type, 'integer') ? '1' : 'any', min: s.minimum, max: s.maximum }));
    input = num;
    get = () => (num.value.trim() === '' ? undefined : Number(num.value));
    set = (v) => { num.value = v === undefined || v === null ? '' : String(v); };
  } else if (isType(s.type, 'object') || isType(s.type, 'array')) {
    const ta = /** @type {HTMLTextAreaElement} */ (h('textarea', { ...common, class: 'fl-input fl-code', rows: 2, spellcheck: 'false' }));
    input = ta;
    get = () => {
      if (!ta.value.trim()) return undefined;
      try { return JSON.parse(ta.value); } catch (e) { throw new Error(`${part} ${name} is not JSON: ${/** @type {Error} */ (e).message}`); }
    };
    set = (v) => { ta.value = v === undefined ? '' : JSON.stringify(v, null, 2); };
  } else {
    const txt = /** @type {HTMLInputElement} */ (h('input', { ...common, type: 'text', spellcheck: 'false', autocomplete: 'off',
      placeholder: s.format === 'date-time' ? '2026-01-31T12:00:00Z' : null }));
    input = txt;
    get = () => (txt.value === '' ? undefined : txt.value);
    set = (v) => { txt.value = v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v); };
  }
  const el = h('div', { class: `fl-run-field${input.type === 'checkbox' ? ' fl-run-checkfield' : ''}` }, label, input, hintEl);
  return { name, el, input, get, set, focus: () => input.focus() };
}

/**
 * A JSON box for a part without declared properties.
 * @param {string} part @param {string} label @param {any} initial
 */
function jsonPart(part, label, initial) {
  const id = `fl-run-f-${part}`;
  const ta = /** @type {HTMLTextAreaElement} */ (h('textarea', { id, class: 'fl-input fl-code', rows: 3, spellcheck: 'false', dataset: { part } }));
  ta.value = initial === undefined ? '' : JSON.stringify(initial, null, 2);
  return {
    el: h('div', { class: 'fl-run-field fl-span2' }, h('label', { for: id, text: label }), ta),
    input: ta,
    get: () => {
      if (!ta.value.trim()) return undefined;
      try { return JSON.parse(ta.value); } catch (e) { throw new Error(`${label} is not JSON: ${/** @type {Error} */ (e).message}`); }
    },
    /** @param {any} v */ set: (v) => { ta.value = v === undefined || v === null ? '' : JSON.stringify(v, null, 2); },
  };
}

/** Declared properties of an object schema, or null. @param {any} schema */
function props(schema) {
  const p = schema && typeof schema === 'object' ? schema.properties : null;
  return p && typeof p === 'object' && Object.keys(p).length ? p : null;
}

/**
 * The form for `doc`.
 * @param {any} doc the flow document
 * @returns {{el: HTMLElement, get: () => RunInput, set: (r: Partial<RunInput>) => void, focus: () => void,
 *   prefill: (values: Record<string, any>) => void}}
 */
export function runForm(doc) {
  const input = doc.input || {};
  const method = doc.endpoint?.method;
  const hasBody = !method || !['GET', 'DELETE'].includes(method);
  /** @type {HTMLElement[]} */
  const sections = [];
  /** @type {Record<string, {name: string, get: () => any, set: (v: any) => void, focus: () => void}[]>} */
  const fields = { params: [], query: [], body: [] };
  /** @type {Record<string, ReturnType<typeof jsonPart> | null>} */
  const boxes = { query: null, body: null };

  const section = (/** @type {string} */ title, /** @type {HTMLElement[]} */ els) => {
    const headId = uid('fl-run-sec');
    sections.push(h('fieldset', { class: 'fl-run-section', 'aria-labelledby': headId },
      h('legend', { id: headId, class: 'fl-run-legend', text: title }), h('div', { class: 'fl-run-grid' }, els)));
  };

  // Path: the path's names, typed by the params schema where it declares them.
  const pSchema = props(input.params) || {};
  const pNames = [...new Set([...pathParams(doc.endpoint?.path || ''), ...Object.keys(pSchema)])];
  if (pNames.length) {
    fields.params = pNames.map((n) => control('params', n, pSchema[n] || { type: 'string' }, true));
    section('Path', fields.params.map((f) => /** @type {any} */ (f).el));
  }
  // Query: declared names, else a JSON box (test input).
  const qSchema = props(input.query);
  if (qSchema) {
    const req = new Set(input.query.required || []);
    fields.query = Object.entries(qSchema).map(([n, s]) => control('query', n, s, req.has(n)));
    section('Query', fields.query.map((f) => /** @type {any} */ (f).el));
  } else if (doc.endpoint) {
    boxes.query = jsonPart('query', 'Query (JSON object)', undefined);
    section('Query', [boxes.query.el]);
  }
  if (hasBody) {
    const bSchema = props(input.body);
    if (bSchema && (!input.body.type || isType(input.body.type, 'object'))) {
      const req = new Set(input.body.required || []);
      fields.body = Object.entries(bSchema).map(([n, s]) => control('body', n, s, req.has(n)));
      section('Body', fields.body.map((f) => /** @type {any} */ (f).el));
    } else {
      boxes.body = jsonPart('body', 'Body (JSON)', {});
      section('Body', [boxes.body.el]);
    }
  }
  const el = h('div', { class: 'fl-run-form' }, sections.length ? sections : h('p', { class: 'fl-hint', text: 'This flow takes no input.' }));

  /** @param {string} part */
  const read = (part) => {
    /** @type {Record<string, any>} */
    const out = {};
    for (const f of fields[part]) {
      const v = f.get();
      if (v !== undefined) out[f.name] = v;
    }
    return out;
  };

  return {
    el,
    get() {
      const params = read('params');
      let query = read('query');
      if (boxes.query) query = boxes.query.get() ?? {};
      /** @type {any} */
      let body = null;
      if (fields.body.length) body = read('body');
      else if (boxes.body) body = boxes.body.get() ?? null;
      return { params, query, body };
    },
    set(r) {
      for (const part of /** @type {const} */ (['params', 'query', 'body'])) {
        const given = r[part];
        if (given === undefined) continue;
        const box = part === 'params' ? null : boxes[part];
        if (box) { box.set(given); continue; }
        const obj = given && typeof given === 'object' && !Array.isArray(given) ? given : {};
        for (const f of fields[part]) f.set(obj[f.name]);
      }
    },
    prefill(values) {
      for (const f of fields.params) if (values[f.name] !== undefined && f.get() === undefined) f.set(values[f.name]);
    },
    focus() {
      const first = el.querySelector('input, select, textarea');
      if (first) /** @type {HTMLElement} */ (first).focus();
    },
  };
}

/**
 * Sample values for the path parameters of `doc`, so a first run finds something: for an
 * integer (or undeclared) `id`-like parameter the id of the first row of the table the flow
 * reads with `db.get` by that parameter (one cheap request), else 1; for a string, a uuid-shaped
 * placeholder when the schema says uuid, else `sample`.
 * @param {any} doc
 * @returns {Promise<Record<string, any>>}
 */
export async function samplePathValues(doc) {
  const schema = props(doc.input?.params) || {};
  /** @type {Record<string, any>} */
  const out = {};
  for (const name of pathParams(doc.endpoint?.path || '')) {
    const s = schema[name] || {};
    if (Array.isArray(s.enum) && s.enum.length) { out[name] = s.enum[0]; continue; }
    if (isType(s.type, 'string') && s.format !== 'uuid') { out[name] = 'sample'; continue; }
    const table = tableReadBy(doc, name);
    let id;
    if (table) {
      try {
        const res = await api('GET', `/tables/${encodeURIComponent(table)}/rows?limit=1&sort=id`, { noRedirect: true });
        id = res.body?.rows?.[0]?.id;
      } catch { /* no rows or no access: fall back */ }
    }
    out[name] = id ?? (s.format === 'uuid' ? '00000000-0000-0000-0000-000000000000' : Math.max(1, Number(s.minimum ?? 1)));
  }
  return out;
}

/** The table of the first `db.get`/`db.update`/`db.delete` node whose id reads `request.params.<name>`. @param {any} doc @param {string} name */
function tableReadBy(doc, name) {
  const needle = `request.params.${name}`;
  for (const n of Object.values(doc.nodes || {})) {
    const node = /** @type {any} */ (n);
    if (!node || typeof node.table !== 'string') continue;
    if (JSON.stringify(node.id ?? node.where ?? '').includes(needle)) return node.table;
  }
  for (const n of Object.values(doc.nodes || {})) {
    const node = /** @type {any} */ (n);
    if (node && typeof node.table === 'string' && String(node.type || '').startsWith('db.')) return node.table;
  }
  return null;
}
