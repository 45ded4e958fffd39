// @ts-check
/**
 * The menu a wire dropped on empty canvas opens: pick a node type (type to filter, Enter takes
 * the first) to create there, already wired from that port.
 */
import { h } from '../dom.js';
import { matches } from './palette.js';

/**
 * @param {HTMLElement} stage where the menu floats
 * @param {any[]} typeList
 * @param {{from: string, port: string, client: {x: number, y: number}}} at the port and where the wire was dropped
 * @param {(type: string) => void} choose
 */
export function quickAdd(stage, typeList, { from, port, client }, choose) {
  const filter = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', type: 'search', placeholder: `Add after ${port}…`, 'aria-label': 'Node type' }));
  const list = h('div', { class: 'fl-quick-list', role: 'listbox' });
  const menu = h('div', { class: 'fl-quick', role: 'dialog', 'aria-label': `Add a node after ${from}.${port}` }, filter, list);
  const outside = (/** @type {Event} */ e) => { if (!menu.contains(/** @type {Node} */ (e.target))) close(); };
  const close = () => { menu.remove(); document.removeEventListener('pointerdown', outside, true); };
  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    list.replaceChildren(...typeList.filter((t) => matches(t, q)).slice(0, 12)
      .map((t) => h('button', { class: 'fl-quick-item', type: 'button', role: 'option', onclick: () => { close(); choose(t.type); } },
        h('span', { class: 'fl-type', text: t.type }), ' ', h('span', { class: 'fl-muted', text: t.title || '' }))));
  };
  filter.addEventListener('input', draw);
  filter.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { e.stopPropagation(); close(); }
    if (e.key === 'Enter') { const first = list.querySelector('button'); if (first) /** @type {HTMLElement} */ (first).click(); }
  });
  draw();
  const host = stage.getBoundingClientRect();
  menu.style.left = `${Math.min(client.x - host.left, host.width - 250)}px`;
  menu.style.top = `${Math.min(client.y - host.top, host.height - 260)}px`;
  stage.append(menu);
  filter.focus();
  setTimeout(() => document.addEventListener('pointerdown', outside, true));
}
