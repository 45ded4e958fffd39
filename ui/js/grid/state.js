// @ts-check
/**
 * The state of one table's data grid: its columns and their types, the page being shown
 * (sort, filter, cursor stack, rows, total), the ticked rows, with named operations that call
 * the data API and change notification (`on('rows' | 'selection', fn)`). No DOM.
 */
import { api, apiUpload } from '../api.js';

/** Rows per page. */
export const PAGE = 50;
/** Columns every table has, set by the server. */
export const SYSTEM = ['id', 'created_at', 'updated_at'];

export class GridState {
  /** @param {any} def the table definition (`GET /tables/{name}`) */
  constructor(def) {
    this.def = def;
    /** @type {string} */
    this.name = def.name;
    /** @type {Record<string, string>} field → type, system columns included */
    this.types = { id: def.id_type === 'uuid' ? 'uuid' : 'integer', created_at: 'timestamp', updated_at: 'timestamp' };
    for (const f of def.fields) this.types[f.name] = f.type;
    const visible = def.fields.filter((/** @type {any} */ f) => f.type !== 'password').map((/** @type {any} */ f) => f.name);
    /** Shown columns: password fields never are. @type {string[]} */
    this.columns = ['id', ...visible, 'created_at', 'updated_at'];
    this.editable = new Set(visible);
    this.sort = 'id';
    /** @type {any} */ this.filter = null;
    /** @type {(string | null)[]} cursors of the pages before the current one */ this.stack = [];
    /** @type {string | null} */ this.cursor = null;
    /** @type {string | null} */ this.next = null;
    this.total = 0;
    /** @type {any[]} */ this.rows = [];
    /** Why the last load failed, or null. @type {any} */ this.error = null;
    /** Ids of the rows ticked on this page. @type {Set<string>} */ this.selected = new Set();
    /** @type {Map<string, Set<() => void>>} */ this.listeners = new Map();
  }

  /** @param {string} event @param {() => void} fn */
  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    /** @type {Set<() => void>} */ (this.listeners.get(event)).add(fn);
  }

  /** @param {string} event */
  emit(event) { for (const fn of this.listeners.get(event) || []) fn(); }

  /** The table's path in the admin API. */
  get path() { return `/tables/${encodeURIComponent(this.name)}`; }

  /** Loads the current page; a failure leaves no rows and sets `error`. */
  async load() {
    const q = new URLSearchParams({ limit: String(PAGE), count: 'true' });
    if (this.cursor) q.set('cursor', this.cursor); else q.set('sort', this.sort);
    if (this.filter) q.set('filter', JSON.stringify(this.filter));
    try {
      const res = await api('GET', `${this.path}/rows?${q}`);
      this.error = null;
      this.rows = res.body.rows;
      this.next = res.body.next_cursor;
      this.total = res.body.total ?? this.total;
    } catch (e) {
      this.error = e;
      this.rows = [];
      this.next = null;
    }
    this.selected.clear();
    this.emit('rows');
  }

  /** Back to the first page. */
  reload() {
    this.stack = [];
    this.cursor = null;
    return this.load();
  }

  /** The next (1) or previous (-1) page, when there is one. @param {number} dir */
  page(dir) {
    if (dir > 0 && this.next) {
      this.stack.push(this.cursor);
      this.cursor = this.next;
    } else if (dir < 0 && this.stack.length) {
      this.cursor = this.stack.pop() ?? null;
    } else {
      return;
    }
    this.load();
  }

  /** Sorts by `col`, or reverses the order when it is sorted by it already. @param {string} col */
  toggleSort(col) {
    this.sort = this.sort === col ? `-${col}` : col;
    this.reload();
  }

  /** One condition (`{field, op, value}`) or null for none. @param {any} filter */
  setFilter(filter) {
    this.filter = filter;
    return this.reload();
  }

  /** Ticks or unticks rows. @param {string[]} ids @param {boolean} on */
  tick(ids, on) {
    for (const id of ids) if (on) this.selected.add(id); else this.selected.delete(id);
    this.emit('selection');
  }

  /** Deletes the ticked rows together; resolves how many went. */
  async deleteSelected() {
    const res = await api('POST', `${this.path}/rows/delete`, { body: { ids: [...this.selected] } });
    await this.load();
    return /** @type {number} */ (res.body.deleted);
  }

  /** @param {any} id */
  async deleteRow(id) {
    await api('DELETE', `${this.path}/rows/${encodeURIComponent(id)}`);
    await this.load();
  }

  /** Writes one field of a row; the row takes the server's answer (updated_at too). @param {any} row @param {string} col @param {any} value */
  async patch(row, col, value) {
    const res = await api('PATCH', `${this.path}/rows/${encodeURIComponent(row.id)}`, { body: { [col]: value } });
    Object.assign(row, res.body);
  }

  /** Inserts a row; resolves it as stored. @param {Record<string, any>} row */
  async insert(row) {
    return (await api('POST', `${this.path}/rows`, { body: row })).body;
  }

  /** Imports a CSV file (`mode`: `valid` or `all`); resolves the report. @param {File} file @param {string} mode */
  async importCsv(file, mode) {
    return (await apiUpload('POST', `${this.path}/import?mode=${mode}`, file, 'text/csv')).body;
  }
}
