// @ts-check
/**
 * The API group form of the Settings screen: name, base path, on/off, description and the CORS
 * rules (allowed origins, methods, headers, credentials, preflight max age; API.md, "API
 * groups"), with a JSON toggle for the whole group (which is also where `rate_limit` is edited).
 * It edits a plain object in the shape `POST /groups` and `PUT /groups/{name}` take.
 */
import { h, uid } from '../../dom.js';

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
const CORS_KEYS = new Set(['allowed_origins', 'allowed_methods', 'allowed_headers', 'expose_headers', 'allow_credentials', 'max_age_secs']);
const GROUP_KEYS = new Set(['name', 'base_path', 'enabled', 'description', 'cors', 'rate_limit']);

/** Why the form cannot show a group, or null. @param {any} g @returns {string | null} */
export function groupProblem(g) {
  if (!g || typeof g !== 'object' || Array.isArray(g)) return 'it is not an object.';
  const extra = Object.keys(g).filter((k) => !GROUP_KEYS.has(k));
  if (extra.length) return `it has ${extra.join(', ')}.`;
  const c = g.cors;
  if (c === null || c === undefined) return null;
  if (typeof c !== 'object' || Array.isArray(c)) return 'cors is not an object.';
  const more = Object.keys(c).filter((k) => !CORS_KEYS.has(k));
  if (more.length) return `cors has ${more.join(', ')}.`;
  for (const k of ['allowed_origins', 'allowed_methods', 'allowed_headers', 'expose_headers']) {
    if (c[k] !== undefined && (!Array.isArray(c[k]) || c[k].some((/** @type {any} */ x) => typeof x !== 'string'))) return `cors.${k} is not a list of texts.`;
  }
  return null;
}

/** Comma-separated text → list. @param {string} s */
const splitList = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);

/**
 * @param {any} start the group (editable part) @param {boolean} isNew
 * @returns {{el: HTMLElement, value: () => any}} `value` throws when the JSON view does not parse
 */
export function groupEditor(start, isNew) {
  let current = structuredClone(start);
  /** @type {HTMLTextAreaElement | null} */
  let ta = null;
  const note = h('p', { class: 'hint fm-note', role: 'status' });
  const body = h('div');
  const toggle = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'btn btn-sm fm-json-toggle', 'aria-pressed': 'false', text: 'JSON', title: 'Edit the whole group as JSON (advanced; also rate limits)' }));
  const show = (/** @type {boolean} */ asJson) => {
    const why = asJson ? null : groupProblem(current);
    note.textContent = why ? `Shown as JSON: ${why}` : '';
    const json = asJson || !!why;
    toggle.setAttribute('aria-pressed', String(json));
    if (json) {
      ta = /** @type {HTMLTextAreaElement} */ (h('textarea', { rows: '14', spellcheck: 'false', name: 'group', class: 'mono', 'aria-label': 'Group (JSON)' }));
      ta.value = JSON.stringify(current, null, 2);
      body.replaceChildren(ta);
    } else {
      ta = null;
      body.replaceChildren(form(current, isNew));
    }
  };
  const read = () => {
    if (!ta) return current;
    try { return JSON.parse(ta.value); } catch { throw new Error('That is not valid JSON.'); }
  };
  toggle.addEventListener('click', () => {
    if (ta) {
      try { current = read(); } catch (e) { note.textContent = /** @type {Error} */ (e).message; return; }
      show(false);
    } else show(true);
  });
  show(false);
  return { el: h('div', { class: 'fm-cors' }, h('div', { class: 'fm-bar' }, toggle), note, body), value: read };
}

/** The form; edits `g` in place. @param {any} g @param {boolean} isNew */
function form(g, isNew) {
  const text = (/** @type {string} */ label, /** @type {string} */ key, /** @type {string} */ hint, readonly = false) => {
    const id = uid('grp');
    const inp = /** @type {HTMLInputElement} */ (h('input', { id, value: g[key] ?? '', readonly, spellcheck: 'false', dataset: { key } }));
    inp.addEventListener('input', () => { g[key] = inp.value; });
    return h('div', { class: 'field' }, h('label', { for: id, text: label }), inp, hint ? h('p', { class: 'hint', text: hint }) : '');
  };
  const enabled = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: g.enabled !== false, dataset: { key: 'enabled' } }));
  enabled.addEventListener('change', () => { g.enabled = enabled.checked; });
  return h('div', null,
    text('Name', 'name', isNew ? 'Lowercase letters, digits and _. Cannot change later.' : 'Cannot change.', !isNew),
    text('Base path', 'base_path', 'Empty, or /segments: the group\u2019s endpoints are served at /api + base path + their path.'),
    h('div', { class: 'field' }, h('label', { class: 'check' }, enabled, 'Enabled (off: its endpoints answer 404)')),
    text('Description', 'description', ''),
    corsFieldset(g));
}

/** @param {any} g */
function corsFieldset(g) {
  let kept = g.cors || { allowed_origins: [] };
  const on = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id: 'cors-on', checked: !!g.cors }));
  const rules = h('div', { class: 'fm-cors-rules' });
  const draw = () => {
    rules.hidden = !g.cors;
    if (!g.cors) { rules.replaceChildren(); return; }
    const c = g.cors;
    // Origins: one input each.
    c.allowed_origins = c.allowed_origins || [];
    const list = h('div', { class: 'fm-cors-list', id: 'cors-origins' });
    const drawOrigins = (focusLast = false) => {
      list.replaceChildren(...c.allowed_origins.map((/** @type {string} */ o, /** @type {number} */ i) => {
        const inp = /** @type {HTMLInputElement} */ (h('input', { value: o, spellcheck: 'false', class: 'cors-origin', placeholder: 'https://app.example.com', 'aria-label': `Allowed origin ${i + 1}` }));
        inp.addEventListener('input', () => { c.allowed_origins[i] = inp.value.trim(); });
        if (focusLast && i === c.allowed_origins.length - 1) queueMicrotask(() => inp.focus());
        return h('div', { class: 'fm-cors-item' }, inp,
          h('button', { type: 'button', class: 'btn btn-sm', 'aria-label': `Remove origin ${o || i + 1}`, text: 'Remove', onclick: () => { c.allowed_origins.splice(i, 1); drawOrigins(); } }));
      }));
      if (!c.allowed_origins.length) list.append(h('p', { class: 'hint', text: 'No origin yet: add one (or * for any origin).' }));
    };
    drawOrigins();
    const methods = METHODS.map((m) => {
      const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: !c.allowed_methods || c.allowed_methods.includes(m), dataset: { method: m } }));
      box.addEventListener('change', () => {
        const cur = new Set(c.allowed_methods || METHODS);
        if (box.checked) cur.add(m); else cur.delete(m);
        c.allowed_methods = METHODS.filter((x) => cur.has(x));
      });
      return h('label', { class: 'check fm-check' }, box, m);
    });
    const listInput = (/** @type {string} */ key, /** @type {string} */ label, /** @type {string} */ hint) => {
      const id = uid('cors');
      const inp = /** @type {HTMLInputElement} */ (h('input', { id, value: (c[key] || []).join(', '), spellcheck: 'false', placeholder: key === 'allowed_headers' ? 'content-type, authorization' : '' }));
      inp.addEventListener('input', () => { const v = splitList(inp.value); if (v.length) c[key] = v; else delete c[key]; });
      return h('div', { class: 'field' }, h('label', { for: id, text: label }), inp, h('p', { class: 'hint', text: hint }));
    };
    const cred = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id: 'cors-credentials', checked: c.allow_credentials === true }));
    cred.addEventListener('change', () => { if (cred.checked) c.allow_credentials = true; else delete c.allow_credentials; });
    const ageId = uid('cors');
    const age = /** @type {HTMLInputElement} */ (h('input', { id: ageId, type: 'number', min: '0', max: '86400', step: '1', value: c.max_age_secs ?? '', placeholder: '600' }));
    age.addEventListener('input', () => { if (age.value === '') delete c.max_age_secs; else c.max_age_secs = Number(age.value); });
    rules.replaceChildren(
      h('div', { class: 'field' }, h('span', { class: 'fm-legend', text: 'Allowed origins' }), list,
        h('div', null, h('button', { type: 'button', class: 'btn btn-sm', id: 'cors-add-origin', text: '+ Origin', onclick: () => { c.allowed_origins.push(''); drawOrigins(true); } })),
        h('p', { class: 'hint', text: 'Exact origins, scheme://host[:port] in lowercase, or * for any origin.' })),
      h('fieldset', null, h('legend', { text: 'Allowed methods' }), h('div', { class: 'fm-methods' }, methods)),
      listInput('allowed_headers', 'Allowed request headers', 'Comma-separated, or *. Empty: content-type and authorization.'),
      listInput('expose_headers', 'Headers pages may read', 'Comma-separated. Empty: none.'),
      h('div', { class: 'field' }, h('label', { class: 'check' }, cred, 'Allow credentials (cookies); not with *')),
      h('div', { class: 'field' }, h('label', { for: ageId, text: 'Preflight max age (seconds)' }), age, h('p', { class: 'hint', text: '0 to 86400; empty: 600.' })));
  };
  on.addEventListener('change', () => {
    if (on.checked) g.cors = kept; else { kept = g.cors || kept; g.cors = null; }
    draw();
  });
  draw();
  return h('fieldset', { class: 'fm-cors-set' }, h('legend', { text: 'CORS' }),
    h('label', { class: 'check' }, on, 'Allow browser pages on other origins to call these endpoints'), rules);
}
