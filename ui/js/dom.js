// @ts-check
/**
 * Building DOM without innerHTML: every string becomes a text node or an attribute value, so
 * nothing the server sends can turn into markup.
 */

/**
 * Creates an element. `attrs` keys: `class`, `text`, `on<Event>` (listeners), `dataset`,
 * boolean attributes as true/false, anything else as an attribute.
 * @param {string} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...(Node | string | number | null | undefined | false | (Node | string | null | undefined | false)[])} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'value' && 'value' in el) /** @type {any} */ (el).value = v;
    else if (k === 'checked' && 'checked' in el) /** @type {any} */ (el).checked = !!v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

/**
 * @param {Element} el
 * @param {any[]} children
 */
function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.append(c);
    else el.append(document.createTextNode(String(c)));
  }
}

/** Removes every child of `el` and appends `children`. */
export function replace(/** @type {Element} */ el, /** @type {any[]} */ ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A unique id for label/input pairs. */
let seq = 0;
export function uid(prefix = 'f') {
  seq += 1;
  return `${prefix}-${seq}`;
}

/**
 * A labelled form field: `<div class="field"><label/>control<p class="hint"/></div>`.
 * @param {string} label
 * @param {HTMLElement} control
 * @param {string} [hint]
 */
export function field(label, control, hint) {
  if (!control.id) control.id = uid();
  const hintEl = hint ? h('p', { class: 'hint', id: `${control.id}-hint`, text: hint }) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id, text: label }), control, hintEl);
}

/** Icons live in `icons.js`; re-exported here so screens import `h`, `field` and `icon` together. */
export { icon } from './icons.js';
