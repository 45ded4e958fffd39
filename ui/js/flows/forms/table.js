// @ts-check
/**
 * The table picker (`"x-widget": "table"`): a select of the managed tables. The list is the
 * flow screen's cached `GET /tables`, refreshed when the select gets focus; picking a table
 * redraws the inspector so the node's column forms follow it.
 */
import { h } from '../../dom.js';

/** @param {import('../widgets.js').WidgetArgs} a */
export function tablePicker({ value, set, ctx, name, required }) {
  const sel = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-table' }));
  const fill = (/** @type {any[]} */ tables) => {
    const keep = sel.value || value || '';
    sel.replaceChildren();
    if (!keep || !required) sel.append(new Option('(pick a table)', ''));
    for (const t of tables) sel.append(new Option(t.name, t.name));
    if (keep && !tables.some((t) => t.name === keep)) sel.append(new Option(`${keep} (no such table)`, keep));
    sel.value = keep;
  };
  fill(ctx ? ctx.tables() : []);
  sel.addEventListener('focus', () => {
    // Redraw the options only when the list changed: replacing them would close an open popup.
    const before = (ctx?.tables() || []).map((t) => t.name).join('\n');
    ctx?.refreshTables().then((t) => {
      if (document.activeElement === sel && t.map((x) => x.name).join('\n') !== before) fill(t);
    }).catch(() => {});
  });
  sel.addEventListener('change', () => {
    set(sel.value === '' ? undefined : sel.value);
    ctx?.rerender(`select[data-prop="${name}"]`);
  });
  sel.dataset.prop = name;
  return sel;
}
