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

/** An inline SVG icon from a small built-in set (drawn as strokes, 20×20). */
export function icon(/** @type {string} */ name) {
  const paths = {
    table: 'M3 5h14v10H3zM3 9h14M8 5v10',
    flow: 'M4 5h4v4H4zM12 11h4v4h-4zM8 7h2a2 2 0 0 1 2 2v4',
    settings: 'M10 7a3 3 0 1 0 0 6 3 3 0 0 0 0-6zM10 2v2M10 16v2M2 10h2M16 10h2M4.2 4.2l1.4 1.4M14.4 14.4l1.4 1.4M4.2 15.8l1.4-1.4M14.4 5.6l1.4-1.4',
    docs: 'M5 3h7l3 3v11H5zM12 3v3h3M7.5 10h5M7.5 13h5',
    logout: 'M8 4H4v12h4M12 6l4 4-4 4M16 10H8',
    plus: 'M10 4v12M4 10h12',
    trash: 'M4 6h12M8 6V4h4v2M6 6l1 10h6l1-10',
    upload: 'M10 14V4M6 8l4-4 4 4M4 16h12',
    download: 'M10 4v10M6 10l4 4 4-4M4 16h12',
    refresh: 'M15 8a5 5 0 1 0 0 4M15 4v4h-4',
    key: 'M8 11a3 3 0 1 1 2.8-4H17v3h-2v2h-2v-2h-2.2A3 3 0 0 1 8 11z',
    close: 'M5 5l10 10M15 5L5 15',
    external: 'M11 4h5v5M16 4l-7 7M14 12v4H4V6h4',
  };
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 20 20');
  svg.setAttribute('width', '18');
  svg.setAttribute('height', '18');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon');
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', /** @type {any} */ (paths)[name] || '');
  svg.append(p);
  return svg;
}
