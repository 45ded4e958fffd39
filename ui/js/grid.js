// @ts-check
/**
 * The data grid of one table (the Data tab): cursor paging, sorting by several columns, a
 * filter bar of several conditions, reference labels and the row picker, arrow-key navigation,
 * inline edit (double-click or Enter on a cell; Enter saves, Escape cancels), insert, delete,
 * CSV import with the per-row error report, and CSV export. The parts live in `grid/`: the
 * state and its API calls (`state.js`), reference labels (`refs.js`), the rendering
 * (`view.js`), the filter bar (`filters.js`), keyboard navigation (`keys.js`), the editing
 * (`edit.js`), the row picker (`picker.js`) and cell values (`values.js`); this module joins
 * them.
 */
import { GridState } from './grid/state.js';
import { gridView } from './grid/view.js';

/**
 * @param {HTMLElement} el
 * @param {any} ctx the table screen's context; `ctx.table` is the table definition
 */
export async function mount(el, ctx) {
  const state = new GridState(ctx.table);
  gridView(el, state);
  await state.start();
}
