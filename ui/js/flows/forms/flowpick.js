// @ts-check
/**
 * The flow picker (`"x-widget": "function"`): a select of the functions, the flows without an
 * endpoint or a trigger, for `call.flow`; with `"x-flows": "jobs"`, of the flows with a `job`
 * trigger, for `job.enqueue.flow` (`GET /flows`, asked when the picker is drawn and again when
 * it gets focus). A name that is not in the list (not created yet, or renamed) stays selectable.
 */
import { api } from '../../api.js';
import { h } from '../../dom.js';

/** @param {import('../widgets.js').WidgetArgs} a */
export function functionPicker({ schema, value, set, required, name }) {
  const jobs = schema?.['x-flows'] === 'jobs';
  const what = jobs ? 'job flow' : 'function';
  const sel = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-function', dataset: { prop: name } }));
  let known = /** @type {string[]} */ ([]);
  const fill = () => {
    const keep = sel.value || value || '';
    sel.replaceChildren();
    if (!keep || !required) sel.append(new Option(`(pick a ${what})`, ''));
    for (const n of known) sel.append(new Option(n, n));
    if (keep && !known.includes(keep)) sel.append(new Option(`${keep} (no such ${what})`, keep));
    sel.value = keep;
  };
  const load = () => api('GET', '/flows').then((r) => {
    const names = (r.body.flows || [])
      .filter((/** @type {any} */ f) => !f.path && (jobs ? f.trigger === 'job' : !f.trigger))
      .map((/** @type {any} */ f) => f.name);
    if (names.join('\n') !== known.join('\n')) { known = names; fill(); }
  }).catch(() => {});
  fill();
  load();
  sel.addEventListener('focus', load);
  sel.addEventListener('change', () => set(sel.value === '' ? undefined : sel.value));
  return sel;
}
