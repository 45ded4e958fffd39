// @ts-check
/**
 * The "JSON" toggle every purpose-built form has: the same value as raw JSON in the
 * inspector's JSON area, round-tripping both ways. Switching back to the form re-reads the
 * JSON; a value the form cannot show keeps the JSON view with a short explanation.
 */
import { h } from '../../dom.js';
import { jsonArea } from '../widgets.js';

/**
 * @param {{
 *   name: string, value: any, set: (v: any) => void, empty: string,
 *   canShow: (v: any) => string | null,
 *   build: (value: any, set: (v: any) => void) => HTMLElement,
 * }} o `canShow` returns why the form cannot show a value, or null when it can.
 * @returns {HTMLElement}
 */
export function withJson(o) {
  let current = o.value;
  const set = (/** @type {any} */ v) => { current = v; o.set(v); };
  const toggle = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'fl-seg-btn fm-json-toggle', 'aria-pressed': 'false', text: 'JSON', title: 'Show the raw JSON (advanced)', 'aria-label': `${o.name}: edit as JSON` }));
  const note = h('p', { class: 'fl-hint fm-note', role: 'status' });
  const body = h('div', { class: 'fm-body' });
  const wrap = h('div', { class: 'fm-form', role: 'group', 'aria-label': o.name }, h('div', { class: 'fm-bar' }, toggle), note, body);
  let json = false;
  const show = (/** @type {boolean} */ asJson) => {
    const why = asJson ? null : o.canShow(current);
    json = asJson || !!why;
    note.textContent = why ? `Shown as JSON: ${why}` : '';
    toggle.setAttribute('aria-pressed', String(json));
    toggle.classList.toggle('is-on', json);
    wrap.dataset.view = json ? 'json' : 'form';
    if (json) {
      const ta = jsonArea(current, set, o.empty);
      ta.setAttribute('aria-label', `${o.name} (JSON)`);
      body.replaceChildren(ta);
    } else {
      body.replaceChildren(o.build(current, set));
    }
  };
  toggle.addEventListener('click', () => show(!json));
  show(false);
  return wrap;
}
