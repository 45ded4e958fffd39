// @ts-check
/**
 * Name → value rows: the `"x-widget": "map"` form, for objects whose keys are names the builder
 * chooses (response headers, an HTTP request's headers and query, SQL parameters), and the
 * "object" source of the value picker (a response body such as `{"items": <rows>}`). Names are
 * checked against the schema's `propertyNames.pattern`. Values are text inputs when the schema
 * says `additionalProperties: {"type": "string"}`, else value sources (request field, variable,
 * a text, number or true/false, a nested object, expression / JSON).
 */
import { h } from '../../dom.js';
import { withJson } from './advanced.js';
import { sourcePicker } from './source.js';

/** @param {import('../widgets.js').WidgetArgs} a */
export function mapWidget(a) {
  const pattern = typeof a.schema.propertyNames?.pattern === 'string' ? new RegExp(a.schema.propertyNames.pattern) : null;
  const textOnly = a.schema.additionalProperties?.type === 'string';
  return withJson({
    name: a.name, value: a.value, set: a.set, empty: '{}',
    canShow: (v) => {
      if (v === undefined) return null;
      if (!v || typeof v !== 'object' || Array.isArray(v)) return 'the value is not an object.';
      if (textOnly && Object.values(v).some((x) => typeof x !== 'string')) return 'a value is not text.';
      return null;
    },
    build: (value, set) => entryRows({ label: a.name, value, ctx: a.ctx, pattern, textOnly, set: (v) => set(Object.keys(v).length || a.required ? v : undefined) }),
  });
}

/**
 * Rows of name + value with + Entry and ✕. `set` gets the whole object (possibly empty).
 * @param {{label: string, value: any, set: (v: Record<string, any>) => void, ctx?: import('../widgets.js').FormContext, pattern?: RegExp | null, textOnly?: boolean}} o
 * @returns {HTMLElement}
 */
export function entryRows(o) {
  /** @type {{key: string, value: any}[]} */
  const rows = Object.entries(o.value && typeof o.value === 'object' ? o.value : {}).map(([key, v]) => ({ key, value: v }));
  const el = h('div', { class: 'fm-map' });
  const write = () => {
    /** @type {Record<string, any>} */
    const out = {};
    for (const r of rows) if (r.key && (!o.pattern || o.pattern.test(r.key)) && r.value !== undefined) out[r.key] = r.value;
    o.set(out);
  };
  const draw = (focusRow = -1) => {
    el.replaceChildren(...rows.map((r, i) => {
      const key = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-map-key', value: r.key, 'aria-label': `${o.label}: name ${i + 1}` }));
      key.spellcheck = false;
      key.addEventListener('input', () => {
        const ok = key.value !== '' && (!o.pattern || o.pattern.test(key.value)) && !rows.some((x) => x !== r && x.key === key.value);
        key.setAttribute('aria-invalid', String(!ok));
        r.key = key.value;
        write();
      });
      const label = `${o.label}: ${r.key || `value ${i + 1}`}`;
      let val;
      if (o.textOnly) {
        const inp = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-map-value', value: r.value ?? '', 'aria-label': `${label} value` }));
        inp.addEventListener('input', () => { r.value = inp.value; write(); });
        val = inp;
      } else {
        val = sourcePicker({ label, value: r.value, ctx: o.ctx, matchName: r.key, set: (v) => { r.value = v; write(); } });
      }
      const rm = h('button', { type: 'button', class: 'fl-btn fm-remove', text: '✕', 'aria-label': `Remove ${r.key || `entry ${i + 1}`}`, onclick: () => { rows.splice(i, 1); write(); draw(); } });
      if (i === focusRow) queueMicrotask(() => key.focus());
      return h('div', { class: 'fm-row fm-map-row', dataset: { key: r.key } }, h('div', { class: 'fm-map-head' }, key, rm), val);
    }),
    h('button', { type: 'button', class: 'fl-btn fm-add', text: '+ Entry', onclick: () => { rows.push({ key: '', value: '' }); draw(rows.length - 1); } }));
  };
  draw();
  return el;
}
