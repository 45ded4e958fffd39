// @ts-check
/**
 * The flow's `settings` as a form: the whole-request timeout, where a read-only flow reads
 * (replica or primary), and the endpoint's rate limits per client address and per token
 * (FLOW-FORMAT.md, "settings" and "Rate limits"). Anything else stays in the JSON view.
 */
import { h } from '../../dom.js';
import { withJson } from './advanced.js';

const KEYS = new Set(['timeout_ms', 'rate_limit', 'read_from']);
const BUDGET = new Set(['requests', 'window_secs']);

/** Why the form cannot show the settings, or null. @param {any} v @returns {string | null} */
export function settingsProblem(v) {
  if (v === undefined) return null;
  if (!v || typeof v !== 'object' || Array.isArray(v)) return 'they are not an object.';
  const extra = Object.keys(v).filter((k) => !KEYS.has(k));
  if (extra.length) return `they have ${extra.join(', ')}.`;
  if (v.timeout_ms !== undefined && !Number.isInteger(v.timeout_ms)) return 'timeout_ms is not a whole number.';
  if (v.read_from !== undefined && !['replica', 'primary'].includes(v.read_from)) return `read_from is ${JSON.stringify(v.read_from)}.`;
  const rl = v.rate_limit;
  if (rl === undefined) return null;
  if (!rl || typeof rl !== 'object' || Array.isArray(rl) || Object.keys(rl).some((k) => k !== 'per_ip' && k !== 'per_token')) return 'rate_limit has another shape.';
  for (const b of Object.values(rl)) {
    if (!b || typeof b !== 'object' || Object.keys(b).some((k) => !BUDGET.has(k)) || Object.values(b).some((n) => !Number.isInteger(n))) return 'a rate limit has another shape.';
  }
  return null;
}

/** @param {{value: any, set: (v: any) => void}} o */
export function settingsForm(o) {
  return withJson({ name: 'settings', value: o.value, set: o.set, empty: '{}', canShow: settingsProblem, build });
}

/** @param {any} value @param {(v: any) => void} set */
function build(value, set) {
  const s = value ? structuredClone(value) : {};
  const write = () => {
    if (s.rate_limit && !Object.keys(s.rate_limit).length) delete s.rate_limit;
    set(Object.keys(s).length ? structuredClone(s) : undefined);
  };
  /** A number input; empty removes the keyword. @param {string} label @param {any} obj @param {string} key @param {Record<string, string>} attrs @param {() => void} [after] */
  const num = (label, obj, key, attrs, after) => {
    const inp = /** @type {HTMLInputElement} */ (h('input', { type: 'number', step: '1', class: `fl-input fm-num fm-${key}`, value: obj()?.[key] ?? '', 'aria-label': label, ...attrs }));
    inp.addEventListener('input', () => {
      if (inp.value === '') { const t = obj(); if (t) delete t[key]; after?.(); write(); return; }
      if (!Number.isInteger(Number(inp.value))) return;
      const t = obj(true);
      t[key] = Number(inp.value);
      write();
    });
    return h('label', { class: 'fm-small' }, h('span', { text: label }), inp);
  };
  const top = (/** @type {boolean} */ _make) => s;
  const read = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-read-from', 'aria-label': 'Reads from (with a read replica)' },
    new Option('replica (default)', ''), new Option('primary', 'primary'), new Option('replica', 'replica')));
  read.value = s.read_from ?? '';
  read.addEventListener('change', () => { if (read.value) s.read_from = read.value; else delete s.read_from; write(); });
  /** The budget object `per`, made on first use. @param {string} per */
  const budget = (per) => (/** @type {boolean} */ make) => {
    if (make) { s.rate_limit = s.rate_limit || {}; s.rate_limit[per] = s.rate_limit[per] || {}; }
    return s.rate_limit?.[per];
  };
  /** Drops a budget left without numbers. @param {string} per */
  const tidy = (per) => () => { if (s.rate_limit?.[per] && !Object.keys(s.rate_limit[per]).length) delete s.rate_limit[per]; };
  const row = (/** @type {string} */ per, /** @type {string} */ who) => h('div', { class: 'fm-fdetails fm-budget', dataset: { per } },
    num(`${who}: requests`, budget(per), 'requests', { min: '1', max: '1000000' }, tidy(per)),
    num(`${who}: per seconds`, budget(per), 'window_secs', { min: '1', max: '86400' }, tidy(per)));
  return h('div', { class: 'fm-settings' },
    h('div', { class: 'fm-fdetails' },
      num('timeout (ms)', top, 'timeout_ms', { min: '10', max: '300000', placeholder: '10000' }),
      h('label', { class: 'fm-small' }, h('span', { text: 'reads from' }), read)),
    h('p', { class: 'fl-help', text: 'Rate limits (empty: none of its own):' }),
    row('per_ip', 'per client address'), row('per_token', 'per token'));
}
