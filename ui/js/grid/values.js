// @ts-check
/**
 * Cell values of the data grid: how a value shows in a cell, and how typed text becomes the
 * JSON value of a field type. Pure functions; no DOM, no API.
 */

/** A value as a cell shows it: timestamps to the second, in UTC; the full value is the title. */
export function shown(/** @type {any} */ v, /** @type {string} */ type) {
  if (type === 'timestamp' && typeof v === 'string') {
    const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(v);
    if (m) return `${m[1]} ${m[2]}`;
  }
  return display(v);
}

/** How a value shows in a cell. */
export function display(/** @type {any} */ v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/**
 * A cell's text as the JSON value of its type. Empty text is null (except for text fields).
 * @param {string} type
 * @param {string} raw
 * @returns {{value?: any, error?: string}}
 */
export function parseCell(type, raw) {
  const t = raw.trim();
  if (type === 'text') return { value: raw };
  if (t === '') return { value: null };
  switch (type) {
    case 'integer':
    case 'reference':
      if (!/^-?\d+$/.test(t)) return type === 'reference' && !/^\d/.test(t) ? { value: t } : { error: 'expected a whole number' };
      return { value: Number.isSafeInteger(Number(t)) ? Number(t) : t };
    case 'decimal':
      if (!/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t)) return { error: 'expected a number' };
      return { value: t.replace(/[-.]/g, '').length > 15 ? t : Number(t) };
    case 'boolean':
      if (['true', 't', 'yes', '1'].includes(t.toLowerCase())) return { value: true };
      if (['false', 'f', 'no', '0'].includes(t.toLowerCase())) return { value: false };
      return { error: 'expected true or false' };
    case 'json':
      try { return { value: JSON.parse(t) }; } catch { return { error: 'expected JSON' }; }
    default:
      return { value: t };
  }
}
