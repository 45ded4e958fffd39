// @ts-check
/**
 * The state of one table's data grid: its columns and their types, the page being shown
 * (sort keys, filter conditions, cursor stack, rows, total), the labels of referenced rows, the
 * ticked rows, with named operations that call the data API and change notification
 * (`on('rows' | 'selection', fn)`; the editing code also emits `cells` when it redrew cells in
 * place and `focus` when the grid should take the focus back). No DOM.
 */
import { api, apiUpload } from '../api.js';
import { RefLabels } from './refs.js';

/** The most sort keys the rows API takes. */
export const MAX_SORT = 8;

/** @typedef {{field: string, desc: boolean}} SortKey */
/** @typedef {{field: string, op: string, value: any}} Condition */

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
    /** Sort keys, first key first; empty is by id. @type {SortKey[]} */
    this.sort = [];
    /** Filter conditions. @type {Condition[]} */
    this.conditions = [];
    /** How the conditions combine. @type {'and' | 'or'} */
    this.join = 'and';
    /** Labels of referenced rows. */
    this.refs = new RefLabels(def);
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

  /** The `sort` parameter of the rows API: `-priority,title`. */
  get sortSpec() {
    return this.sort.length ? this.sort.map((k) => `${k.desc ? '-' : ''}${k.field}`).join(',') : 'id';
  }

  /** The filter document of the conditions, or null for none. */
  get filter() {
    if (!this.conditions.length) return null;
    if (this.conditions.length === 1) return this.conditions[0];
    return { [this.join]: this.conditions };
  }

  /** Reads what the grid needs besides its rows (the referenced tables), then the first page. */
  async start() {
    await this.refs.loadDefs();
    await this.load();
  }

  /** Loads the current page and the labels of its references; a failure leaves no rows and
   * sets `error`. */
  async load() {
    const q = new URLSearchParams({ limit: String(PAGE), count: 'true' });
    if (this.cursor) q.set('cursor', this.cursor); else q.set('sort', this.sortSpec);
    const filter = this.filter;
    if (filter) q.set('filter', JSON.stringify(filter));
    try {
      const res = await api('GET', `${this.path}/rows?${q}`);
      this.error = null;
      this.rows = res.body.rows;
      this.next = res.body.next_cursor;
      this.total = res.body.total ?? this.total;
      this.refs.labels.clear();
      await this.refs.fetch(this.rows);
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

  /**
   * Sorts by `col` alone, or reverses it when it is the only key. With `add` (Shift+click),
   * adds `col` as the next key, or reverses it when it is a key already.
   * @param {string} col @param {boolean} [add]
   */
  toggleSort(col, add = false) {
    const at = this.sort.findIndex((k) => k.field === col);
    if (add) {
      if (at >= 0) this.sort[at] = { field: col, desc: !this.sort[at].desc };
      else if (this.sort.length < MAX_SORT) this.sort = [...this.sort, { field: col, desc: false }];
    } else {
      this.sort = [{ field: col, desc: this.sort.length === 1 && at === 0 ? !this.sort[0].desc : false }];
    }
    // `id` is unique: keys after it order nothing, and the API refuses them.
    const id = this.sort.findIndex((k) => k.field === 'id');
    if (id >= 0) this.sort = this.sort.slice(0, id + 1);
    return this.reload();
  }

  /** Back to the order by id. */
  clearSort() {
    this.sort = [];
    return this.reload();
  }

  /** The conditions (`{field, op, value}`) and how they combine. @param {Condition[]} conditions @param {'and' | 'or'} [join] */
  setFilter(conditions, join = this.join) {
    this.conditions = conditions;
    this.join = join;
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
