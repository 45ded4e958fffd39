// @ts-check
/**
 * Key → value rows (`"x-widget": "map"`), for objects whose keys are names the builder chooses:
 * response headers, an HTTP request's headers and query, SQL parameters. Keys are checked
 * against the schema's `propertyNames.pattern`. Values are text inputs when the schema says
 * `additionalProperties: {"type": "string"}`, else a value source (request field, variable,
 * text, expression / JSON).
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
    build: (value, set) => {
      /** @type {{key: string, value: any}[]} */
      const rows = Object.entries(value && typeof value === 'object' ? value : {}).map(([key, v]) => ({ key, value: v }));
      const el = h('div', { class: 'fm-map' });
      const write = () => {
        /** @type {Record<string, any>} */
        const out = {};
        for (const r of rows) if (r.key && (!pattern || pattern.test(r.key)) && r.value !== undefined) out[r.key] = r.value;
        set(Object.keys(out).length || a.required ? out : undefined);
      };
      const draw = (focusRow = -1) => {
        el.replaceChildren(...rows.map((r, i) => {
          const key = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-map-key', value: r.key, 'aria-label': `${a.name}: name ${i + 1}` }));
          key.spellcheck = false;
          key.addEventListener('input', () => {
            const ok = key.value !== '' && (!pattern || pattern.test(key.value)) && !rows.some((o) => o !== r && o.key === key.value);
            key.setAttribute('aria-invalid', String(!ok));
            r.key = key.value;
            write();
          });
          const label = `${a.name}: ${r.key || `value ${i + 1}`}`;
          let val;
          if (textOnly) {
            const inp = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-map-value', value: r.value ?? '', 'aria-label': `${label} value` }));
            inp.addEventListener('input', () => { r.value = inp.value; write(); });
            val = inp;
          } else {
            val = sourcePicker({ label, value: r.value, ctx: a.ctx, column: { name: r.key, type: 'text', required: false, hasDefault: false, system: false }, set: (v) => { r.value = v; write(); } });
          }
          const rm = h('button', { type: 'button', class: 'fl-btn fm-remove', text: '✕', 'aria-label': `Remove ${r.key || `entry ${i + 1}`}`, onclick: () => { rows.splice(i, 1); write(); draw(); } });
          if (i === focusRow) queueMicrotask(() => key.focus());
          return h('div', { class: 'fm-row fm-map-row', dataset: { key: r.key } }, h('div', { class: 'fm-map-head' }, key, rm), val);
        }),
        h('button', { type: 'button', class: 'fl-btn fm-add', text: '+ Entry', onclick: () => { rows.push({ key: '', value: '' }); draw(rows.length - 1); } }));
      };
      draw();
      return el;
    },
  });
}
