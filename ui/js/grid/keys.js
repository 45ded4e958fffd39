// @ts-check
/**
 * Keyboard navigation of the data grid, after the ARIA grid pattern: the table is one stop in
 * the Tab order (roving tabindex: exactly one cell, or the one control in it, has
 * `tabindex=0`); arrow keys move between cells, Home/End to the first/last cell of the row,
 * Ctrl+Home/End to the first/last row, PageUp/PageDown ten rows. Tab leaves the grid. The
 * position survives a redraw (by row and column index).
 */

/** Rows PageUp/PageDown move. */
const PAGE_STEP = 10;

/**
 * The focusable thing of a cell: its one control (tick box, sort or delete button) when it has
 * one and is not being edited, else the cell itself.
 * @param {HTMLTableCellElement} cell
 * @returns {HTMLElement}
 */
function itemOf(cell) {
  if (cell.classList.contains('editing')) return cell;
  const control = /** @type {HTMLElement | null} */ (cell.querySelector('input, button, select, a'));
  return control || cell;
}

/** The grid as rows of cells: the head row, then the body rows (without the "no rows" line). */
function matrix(/** @type {HTMLTableElement} */ table) {
  return [...table.rows]
    .filter((r) => r.cells.length > 1 || r.parentElement?.tagName === 'THEAD')
    .map((r) => [...r.cells]);
}

/**
 * Makes `table` a grid with one Tab stop and arrow-key navigation.
 * @param {HTMLTableElement} table
 * @returns {{sync: (focus: boolean) => void}} `sync` after a redraw: puts the Tab stop back
 *   where it was, and focus on it when `focus` (the grid had focus before the redraw)
 */
export function gridKeys(table) {
  let pos = { r: 1, c: 1 };

  /** Where `el` sits, or null. @param {EventTarget | null} el */
  const locate = (el) => {
    const cell = /** @type {HTMLElement | null} */ (el instanceof Element ? el.closest('td, th') : null);
    if (!cell || !table.contains(cell)) return null;
    const m = matrix(table);
    for (let r = 0; r < m.length; r++) {
      const c = m[r].indexOf(/** @type {HTMLTableCellElement} */ (cell));
      if (c >= 0) return { r, c };
    }
    return null;
  };

  /** Makes the cell at `p` (clamped) the Tab stop; focuses it with `focus`. @param {{r: number, c: number}} p @param {boolean} focus */
  const place = (p, focus) => {
    const m = matrix(table);
    if (!m.length) return;
    const r = Math.max(0, Math.min(m.length - 1, p.r));
    const c = Math.max(0, Math.min(m[r].length - 1, p.c));
    pos = { r, c };
    for (const row of m) {
      for (const cell of row) {
        const item = itemOf(cell);
        if (item !== cell) cell.removeAttribute('tabindex');
        item.setAttribute('tabindex', '-1');
      }
    }
    const item = itemOf(m[r][c]);
    item.setAttribute('tabindex', '0');
    if (focus) item.focus();
  };

  // Whatever gets focus (a click, a redrawn cell focused again) becomes the Tab stop.
  table.addEventListener('focusin', (ev) => {
    const p = locate(ev.target);
    if (p) place(p, false);
  });

  table.addEventListener('keydown', (ev) => {
    const target = /** @type {HTMLElement} */ (ev.target);
    // Inside an inline editor the keys are the editor's.
    if (target.closest('td.editing')) return;
    if (target.tagName === 'SELECT' || (target.tagName === 'INPUT' && /** @type {HTMLInputElement} */ (target).type !== 'checkbox')) return;
    const p = locate(target);
    if (!p) return;
    const m = matrix(table);
    const last = m.length - 1;
    /** @type {{r: number, c: number} | null} */
    let to = null;
    switch (ev.key) {
      case 'ArrowDown': to = { r: p.r + 1, c: p.c }; break;
      case 'ArrowUp': to = { r: p.r - 1, c: p.c }; break;
      case 'ArrowRight': to = { r: p.r, c: p.c + 1 }; break;
      case 'ArrowLeft': to = { r: p.r, c: p.c - 1 }; break;
      case 'Home': to = ev.ctrlKey ? { r: 0, c: 0 } : { r: p.r, c: 0 }; break;
      case 'End': to = ev.ctrlKey ? { r: last, c: m[last].length - 1 } : { r: p.r, c: m[p.r].length - 1 }; break;
      case 'PageDown': to = { r: Math.min(last, p.r + PAGE_STEP), c: p.c }; break;
      case 'PageUp': to = { r: Math.max(p.r > 0 ? 1 : 0, p.r - PAGE_STEP), c: p.c }; break;
      default: return;
    }
    if (ev.altKey || ev.metaKey || ev.shiftKey) return;
    ev.preventDefault();
    place(to, true);
  });

  return { sync: (focus) => place(pos, focus) };
}
