// @ts-check
/**
 * Labels of referenced rows: which field names a row (`labelField`), and the labels of the ids a
 * page shows, fetched with one `POST /tables/{t}/rows/query` per referenced table (an `in`
 * filter on `id`), never one request per row. No DOM.
 */
import { api } from '../api.js';

/** Field types whose value can name a row. */
const LABEL_TYPES = ['text', 'email', 'enum'];

/**
 * The field that names a row of table `def`: its first text, email or enum field (never a
 * password), or null when it has none (then the id is the label).
 * @param {any} def a table definition
 * @returns {string | null}
 */
export function labelField(def) {
  const f = (def?.fields || []).find((/** @type {any} */ x) => LABEL_TYPES.includes(x.type));
  return f ? f.name : null;
}

/**
 * A second field worth showing next to the label in the picker: the next text-like or number
 * field after the label, or null.
 * @param {any} def @param {string | null} label
 * @returns {string | null}
 */
export function detailField(def, label) {
  const f = (def?.fields || []).find((/** @type {any} */ x) => x.name !== label && [...LABEL_TYPES, 'integer', 'decimal', 'date'].includes(x.type));
  return f ? f.name : null;
}

/** The referenced tables of a grid and the labels of the ids seen so far. */
export class RefLabels {
  /** @param {any} def the grid's table */
  constructor(def) {
    /** Reference field → referenced table name. @type {Map<string, string>} */
    this.fields = new Map();
    for (const f of def.fields) if (f.type === 'reference' && f.table) this.fields.set(f.name, f.table);
    /** Referenced table → its definition (null when it cannot be read). @type {Map<string, any>} */
    this.defs = new Map();
    /** Referenced table → id (as text) → label. @type {Map<string, Map<string, string>>} */
    this.labels = new Map();
  }

  /** Reads the definitions of the referenced tables, once each. */
  async loadDefs() {
    const targets = [...new Set(this.fields.values())];
    await Promise.all(targets.map(async (t) => {
      try {
        this.defs.set(t, (await api('GET', `/tables/${encodeURIComponent(t)}`)).body);
      } catch {
        this.defs.set(t, null);
      }
    }));
  }

  /** The referenced table of field `c`, or undefined. @param {string} c */
  target(c) { return this.fields.get(c); }

  /** The label field of the table field `c` references. @param {string} c */
  labelOf(c) {
    const t = this.fields.get(c);
    return t ? labelField(this.defs.get(t)) : null;
  }

  /** The label of id `id` in the table field `c` references, or undefined. @param {string} c @param {any} id */
  label(c, id) {
    const t = this.fields.get(c);
    if (!t || id === null || id === undefined) return undefined;
    return this.labels.get(t)?.get(String(id));
  }

  /** Remembers a label (a row picked in the picker). @param {string} c @param {any} row */
  remember(c, row) {
    const t = this.fields.get(c);
    if (!t || !row) return;
    const lf = labelField(this.defs.get(t));
    if (!this.labels.has(t)) this.labels.set(t, new Map());
    /** @type {Map<string, string>} */ (this.labels.get(t)).set(String(row.id), lf && row[lf] !== null && row[lf] !== undefined ? String(row[lf]) : String(row.id));
  }

  /**
   * Fetches the labels of the ids in `rows`: one request per referenced table. A table that
   * cannot be read leaves its ids without labels.
   * @param {any[]} rows
   */
  async fetch(rows) {
    /** @type {Map<string, Set<any>>} */
    const wanted = new Map();
    for (const [c, t] of this.fields) {
      if (!labelField(this.defs.get(t))) continue;
      for (const r of rows) {
        const id = r[c];
        if (id === null || id === undefined || this.labels.get(t)?.has(String(id))) continue;
        if (!wanted.has(t)) wanted.set(t, new Set());
        /** @type {Set<any>} */ (wanted.get(t)).add(id);
      }
    }
    await Promise.all([...wanted].map(async ([t, ids]) => {
      const list = [...ids];
      try {
        const res = await api('POST', `/tables/${encodeURIComponent(t)}/rows/query`, {
          body: { filter: { field: 'id', op: 'in', value: list }, limit: Math.max(1, list.length) },
        });
        const lf = /** @type {string} */ (labelField(this.defs.get(t)));
        if (!this.labels.has(t)) this.labels.set(t, new Map());
        const m = /** @type {Map<string, string>} */ (this.labels.get(t));
        for (const row of res.body.rows) m.set(String(row.id), row[lf] === null || row[lf] === undefined ? '' : String(row[lf]));
      } catch {
        // Labels are a help: without them the ids still show.
      }
    }));
  }
}
