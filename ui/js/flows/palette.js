// @ts-check
/**
 * The palette: node types from `GET /node-types`, grouped and filtered. A type is dragged onto
 * the canvas (the canvas reads `application/x-sluice-node`) or clicked to land in free space
 * next to the selected node (in the stack view: after the selected step).
 */
import { h } from '../dom.js';

/** Palette groups, in order; a type goes to the first group that takes it, else Other. */
const GROUPS = /** @type {[string, (t: string) => boolean][]} */ ([
  ['Data', (t) => t.startsWith('db.')],
  ['Logic', (t) => ['if', 'switch', 'for_each', 'collect', 'set', 'script', 'validate', 'call'].includes(t)],
  ['Outside', (t) => t.startsWith('http.') || t === 'template' || t.startsWith('auth.')],
  ['End', (t) => t === 'respond' || t === 'fail'],
  ['Other', () => true],
]);

/** Whether a node type matches the filter text. @param {any} t @param {string} q */
export const matches = (t, q) => !q || t.type.includes(q) || String(t.title || '').toLowerCase().includes(q);

/**
 * @param {any[]} typeList @param {(type: string) => void} add adds a node of `type`
 * @returns {HTMLElement}
 */
export function palette(typeList, add) {
  const search = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', type: 'search', placeholder: 'Filter nodes', 'aria-label': 'Filter node types' }));
  const list = h('div', { class: 'fl-palette-list' });
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    list.replaceChildren();
    const used = new Set();
    for (const [group, test] of GROUPS) {
      const items = typeList.filter((t) => !used.has(t.type) && test(t.type));
      items.forEach((t) => used.add(t.type));
      const shown = items.filter((t) => matches(t, q));
      if (!shown.length) continue;
      list.append(h('h3', { class: 'fl-palette-group', text: group }), ...shown.map((t) => item(t, add)));
    }
  };
  search.addEventListener('input', draw);
  draw();
  return h('aside', { class: 'fl-palette', 'aria-label': 'Node types' }, h('h2', { class: 'fl-side-title', text: 'Nodes' }), search, list,
    h('p', { class: 'fl-hint', text: 'Click (or Enter) to add next to the selected node, or drag onto the canvas. Wire by dragging from a port (●) to a node, or select a node and press W. Click a wire to disconnect. Shift-drag selects an area.' }));
}

/** @param {any} t @param {(type: string) => void} add */
function item(t, add) {
  const el = h('button', { class: 'fl-palette-item', type: 'button', draggable: 'true', 'data-type': t.type, title: t.title || t.type,
    'aria-description': 'Add this node' }, h('span', { class: 'fl-type', text: t.type }), h('span', { class: 'fl-palette-title', text: t.title || '' }));
  el.addEventListener('dragstart', (e) => { e.dataTransfer?.setData('application/x-sluice-node', t.type); if (e.dataTransfer) e.dataTransfer.effectAllowed = 'copy'; });
  el.addEventListener('click', () => add(t.type));
  return el;
}
