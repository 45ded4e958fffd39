// @ts-check
/**
 * The editor's icons: one small set of stroke icons drawn on a 20×20 grid, built as inline
 * `<svg>` elements (no icon font, no image requests, nothing the CSP has to allow). Every screen
 * uses these instead of text glyphs, so an icon looks the same everywhere. Colour comes from
 * the surrounding text (`currentColor`), size and stroke from the `.icon` rule in app.css.
 */

/** Path data per icon name (SVG `d`, 20×20 viewBox, strokes only). */
const PATHS = {
  plus: 'M10 4v12M4 10h12',
  trash: 'M4 6h12M8 6V4h4v2M6 6l1 10h6l1-10',
  copy: 'M7 7h9v9H7zM4 13V4h9',
  edit: 'M4 16h3l9-9-3-3-9 9zM11 6l3 3',
  play: 'M6.5 4.5v11l9-5.5z',
  upload: 'M10 14V4M6 8l4-4 4 4M4 16h12',
  download: 'M10 4v10M6 10l4 4 4-4M4 16h12',
  history: 'M3.5 4v3.5H7M3.9 7.5A6.5 6.5 0 1 1 3.5 10M10 6.5V10l2.5 1.5',
  undo: 'M7 5L3 9l4 4M3 9h9.5a3.5 3.5 0 0 1 0 7H9',
  redo: 'M13 5l4 4-4 4M17 9H7.5a3.5 3.5 0 0 0 0 7H11',
  save: 'M4 3.5h9.5L16.5 6.5v10h-12.5zM7 3.5v4h6v-4M7 16.5v-5h6v5',
  settings: 'M10 7a3 3 0 1 0 0 6 3 3 0 0 0 0-6zM10 2v2M10 16v2M2 10h2M16 10h2M4.2 4.2l1.4 1.4M14.4 14.4l1.4 1.4M4.2 15.8l1.4-1.4M14.4 5.6l1.4-1.4',
  table: 'M3 5h14v10H3zM3 9h14M8 5v10',
  flow: 'M4 5h4v4H4zM12 11h4v4h-4zM8 7h2a2 2 0 0 1 2 2v4',
  function: 'M13.5 3.5h-1a2.5 2.5 0 0 0-2.5 2.5v8a2.5 2.5 0 0 1-2.5 2.5h-1M7 9h6',
  search: 'M9 4a5 5 0 1 0 0 10 5 5 0 0 0 0-10zM12.6 12.6L16.5 16.5',
  close: 'M5 5l10 10M15 5L5 15',
  chevron: 'M8 5l5 5-5 5',
  'chevron-down': 'M5 8l5 5 5-5',
  back: 'M16 10H4M9 5l-5 5 5 5',
  check: 'M4 10.5l4 4 8-9',
  warning: 'M10 3L2 16.5h16zM10 8v4M10 14.2v.3',
  link: 'M8.5 11.5a3 3 0 0 0 4.2 0l3-3a3 3 0 0 0-4.2-4.2l-1 1M11.5 8.5a3 3 0 0 0-4.2 0l-3 3a3 3 0 0 0 4.2 4.2l1-1',
  eye: 'M2 10s3-5.5 8-5.5 8 5.5 8 5.5-3 5.5-8 5.5S2 10 2 10zM10 7.5a2.5 2.5 0 1 0 0 5 2.5 2.5 0 0 0 0-5z',
  grip: 'M7.5 5v.01M12.5 5v.01M7.5 10v.01M12.5 10v.01M7.5 15v.01M12.5 15v.01',
  'zoom-in': 'M9 4a5 5 0 1 0 0 10 5 5 0 0 0 0-10zM12.6 12.6L16.5 16.5M9 7v4M7 9h4',
  'zoom-out': 'M9 4a5 5 0 1 0 0 10 5 5 0 0 0 0-10zM12.6 12.6L16.5 16.5M7 9h4',
  fit: 'M3 7V3h4M13 3h4v4M17 13v4h-4M7 17H3v-4',
  minimap: 'M3 4h14v12H3zM10 10h5v4h-5z',
  list: 'M7.5 5H17M7.5 10H17M7.5 15H17M3.5 5v.01M3.5 10v.01M3.5 15v.01',
  docs: 'M5 3h7l3 3v11H5zM12 3v3h3M7.5 10h5M7.5 13h5',
  logout: 'M8 4H4v12h4M12 6l4 4-4 4M16 10H8',
  refresh: 'M15 8a5 5 0 1 0 0 4M15 4v4h-4',
  key: 'M8 11a3 3 0 1 1 2.8-4H17v3h-2v2h-2v-2h-2.2A3 3 0 0 1 8 11z',
  external: 'M11 4h5v5M16 4l-7 7M14 12v4H4V6h4',
};

/** Every icon name, for tests and for finding one to use. */
export const ICON_NAMES = Object.freeze(Object.keys(PATHS));

/**
 * An inline SVG icon. Decorative (`aria-hidden`) unless `label` is given; then it is an image
 * with that accessible name, for an icon that stands alone without text next to it (a button
 * with only an icon should rather carry `aria-label` itself). An unknown name is a programming
 * error and throws.
 * @param {string} name one of `ICON_NAMES`
 * @param {{label?: string, size?: number}} [opts] `size` in CSS pixels (default 18)
 * @returns {SVGSVGElement}
 */
export function icon(name, opts = {}) {
  const d = /** @type {Record<string, string>} */ (PATHS)[name];
  if (d === undefined) throw new Error(`unknown icon: ${name}`);
  const ns = 'http://www.w3.org/2000/svg';
  const svg = /** @type {SVGSVGElement} */ (document.createElementNS(ns, 'svg'));
  const size = String(opts.size || 18);
  svg.setAttribute('viewBox', '0 0 20 20');
  svg.setAttribute('width', size);
  svg.setAttribute('height', size);
  svg.setAttribute('class', `icon icon-${name}`);
  svg.setAttribute('focusable', 'false');
  if (opts.label) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', opts.label);
  } else {
    svg.setAttribute('aria-hidden', 'true');
  }
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', d);
  svg.append(p);
  return svg;
}
