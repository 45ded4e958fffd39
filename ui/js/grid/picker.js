// @ts-check
/**
 * The row picker of a reference field: a dialog with a search box (filters the referenced
 * table by its label field with `contains`), the matching rows (id, label and one more field)
 * as a listbox, 20 at a time with **More**. Arrow keys move, Enter picks, Escape cancels;
 * **Clear** picks "no row" when the field is not required.
 */
import { api } from '../api.js';
import { h, replace, uid } from '../dom.js';
import { dialog, errorBox } from '../ui.js';
import { detailField, labelField } from './refs.js';

/** Rows per request. */
const BATCH = 20;

/**
 * Opens the picker. Resolves `{row}` with the picked row, `{row: null}` for Clear, or undefined
 * when cancelled.
 * @param {{table: string, def: any, field: string, required: boolean, current?: any}} opts
 *   `def` is the referenced table's definition (null when unknown: then ids only)
 * @returns {Promise<{row: any} | undefined>}
 */
export function pickRow({ table, def, field, required, current }) {
  const label = labelField(def);
  const detail = detailField(def, label);
  const listId = uid('pick');
  const search = /** @type {HTMLInputElement} */ (h('input', {
    type: 'search', id: `${listId}-search`, class: 'pick-search', autocomplete: 'off', spellcheck: 'false',
    role: 'combobox', 'aria-expanded': 'true', 'aria-controls': listId, 'aria-autocomplete': 'list',
    placeholder: label ? `Search by ${label}` : 'Search by id',
  }));
  const list = h('ul', { class: 'pick-list', id: listId, role: 'listbox', 'aria-label': `Rows of ${table}` });
  const status = h('p', { class: 'pick-status hint', role: 'status', 'aria-live': 'polite' });
  const problems = h('div');
  const more = h('button', { type: 'button', class: 'btn btn-sm', id: 'pick-more', hidden: true }, 'More');
  const scroll = h('div', { class: 'pick-scroll' }, list);
  /** @type {any[]} */
  let rows = [];
  let active = -1;
  /** @type {string | null} */
  let next = null;
  let seq = 0;

  /** The filter of the search text. @param {string} q */
  const filterOf = (q) => {
    const t = q.trim();
    if (!t) return null;
    if (label) return { field: label, op: 'contains', value: t };
    // Without a label field the search is an id; text that cannot be one matches nothing.
    if (def?.id_type === 'uuid') return /^[0-9a-f-]{36}$/i.test(t) ? { field: 'id', op: 'eq', value: t } : { or: [] };
    return /^\d+$/.test(t) ? { field: 'id', op: 'eq', value: Number(t) } : { or: [] };
  };

  const setActive = (/** @type {number} */ i) => {
    const items = /** @type {HTMLElement[]} */ ([...list.querySelectorAll('[role=option]')]);
    if (!items.length) { active = -1; search.removeAttribute('aria-activedescendant'); return; }
    active = Math.max(0, Math.min(items.length - 1, i));
    items.forEach((el, n) => el.setAttribute('aria-selected', String(n === active)));
    search.setAttribute('aria-activedescendant', items[active].id);
    items[active].scrollIntoView({ block: 'nearest' });
  };

  /** Loads the first batch for the search text, or (`append`) the next one. @param {boolean} append */
  const load = async (append) => {
    const mine = ++seq;
    const body = { filter: filterOf(search.value), sort: label ? `${label},id` : 'id', limit: BATCH, count: !append, ...(append && next ? { cursor: next } : {}) };
    try {
      const res = await api('POST', `/tables/${encodeURIComponent(table)}/rows/query`, { body });
      if (mine !== seq) return;
      replace(problems);
      rows = append ? [...rows, ...res.body.rows] : res.body.rows;
      next = res.body.next_cursor;
      if (!append) status.textContent = `${res.body.total} matching row${res.body.total === 1 ? '' : 's'}`;
      draw();
      // The first batch starts on the current row when it is there, else on the first.
      if (!append) setActive(Math.max(0, rows.findIndex((r) => String(r.id) === String(current))));
      else if (active < 0) setActive(0);
    } catch (e) {
      if (mine === seq) replace(problems, errorBox(e));
    }
  };

  const draw = () => {
    // An empty listbox is hidden: "0 matching rows" in the status says it.
    scroll.hidden = rows.length === 0;
    replace(list, rows.map((r, i) => h('li', {
          role: 'option', id: `${listId}-${i}`, class: String(r.id) === String(current) ? 'pick-item current' : 'pick-item',
          'aria-selected': 'false', dataset: { id: String(r.id) },
          onmousedown: (/** @type {MouseEvent} */ ev) => ev.preventDefault(),
          onclick: () => choose(i),
        },
          h('span', { class: 'pick-id', text: String(r.id) }),
          h('span', { class: 'pick-label', text: label ? show(r[label]) : '' }),
          detail ? h('span', { class: 'pick-detail', text: show(r[detail]) }) : null)));
    more.hidden = !next;
  };

  /** @type {(v?: any) => void} */
  let close = () => {};
  const choose = (/** @type {number} */ i) => { if (rows[i]) close({ row: rows[i] }); };

  search.addEventListener('input', () => { next = null; load(false); });
  search.addEventListener('keydown', (ev) => {
    const page = 8;
    if (ev.key === 'ArrowDown') { ev.preventDefault(); setActive(active + 1); }
    else if (ev.key === 'ArrowUp') { ev.preventDefault(); setActive(active - 1); }
    else if (ev.key === 'PageDown') { ev.preventDefault(); setActive(active + page); }
    else if (ev.key === 'PageUp') { ev.preventDefault(); setActive(active - page); }
    else if (ev.key === 'Enter') { ev.preventDefault(); if (active >= 0) choose(active); }
  });
  more.addEventListener('click', () => { load(true); search.focus(); });

  const picked = dialog({
    title: `Choose a row of ${table} for ${field}`,
    wide: true,
    cls: 'pick-dialog',
    body: (c) => {
      close = c;
      return [
        h('label', { class: 'sr-only', for: search.id, text: label ? `Search ${table} by ${label}` : `Search ${table} by id` }),
        search,
        status,
        problems,
        scroll,
        h('div', { class: 'dialog-actions' },
          more,
          h('span', { class: 'spacer' }),
          required ? null : h('button', { type: 'button', class: 'btn', id: 'pick-clear', onclick: () => c({ row: null }) }, 'Clear'),
          h('button', { type: 'button', class: 'btn', onclick: () => c(undefined) }, 'Cancel')),
      ];
    },
  });
  search.focus();
  load(false);
  return picked;
}

/** A value as the picker shows it. @param {any} v */
function show(v) {
  if (v === null || v === undefined) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}
