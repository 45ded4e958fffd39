// @ts-check
/**
 * The flow's `settings` as a form: the whole-request timeout, where a read-only flow reads
 * (replica or primary), how its statements share a transaction (auto, none, serializable), and
 * the endpoint's rate limits per client address and per token (FLOW-FORMAT.md, "settings",
 * "Transactions" and "Rate limits"). Anything else stays in the JSON view.
 */
import { h } from '../../dom.js';
import { withJson } from './advanced.js';

const KEYS = new Set(['timeout_ms', 'rate_limit', 'read_from', 'transaction']);
const TRIGGER_KEYS = new Set(['timeout_ms', 'retry', 'concurrency', 'transaction']);
const RETRY = new Set(['max_attempts', 'backoff_ms', 'max_backoff_ms']);
const BUDGET = new Set(['requests', 'window_secs']);

/** Why the form cannot show the settings, or null. @param {any} v @returns {string | null} */
export function settingsProblem(v, trigger = false) {
  if (v === undefined) return null;
  if (!v || typeof v !== 'object' || Array.isArray(v)) return 'they are not an object.';
  const extra = Object.keys(v).filter((k) => !(trigger ? TRIGGER_KEYS : KEYS).has(k));
  if (extra.length) return `they have ${extra.join(', ')}.`;
  if (v.timeout_ms !== undefined && !Number.isInteger(v.timeout_ms)) return 'timeout_ms is not a whole number.';
  if (v.read_from !== undefined && !['replica', 'primary'].includes(v.read_from)) return `read_from is ${JSON.stringify(v.read_from)}.`;
  if (v.transaction !== undefined && !(trigger ? ['auto', 'serializable'] : ['auto', 'none', 'serializable']).includes(v.transaction)) return `transaction is ${JSON.stringify(v.transaction)}.`;
  if (v.retry !== undefined && (!v.retry || typeof v.retry !== 'object' || Object.entries(v.retry).some(([k, n]) => !RETRY.has(k) || !Number.isInteger(n)))) return 'retry has another shape.';
  const c = v.concurrency;
  if (c !== undefined && (!c || typeof c !== 'object' || !Number.isInteger(c.limit) || Object.keys(c).some((k) => k !== 'limit' && k !== 'key')
    || (c.key !== undefined && (typeof c.key !== 'object' || typeof c.key?.$rhai !== 'string' || Object.keys(c.key).length !== 1)))) return 'concurrency has another shape.';
  const rl = v.rate_limit;
  if (rl === undefined) return null;
  if (!rl || typeof rl !== 'object' || Array.isArray(rl) || Object.keys(rl).some((k) => k !== 'per_ip' && k !== 'per_token')) return 'rate_limit has another shape.';
  for (const b of Object.values(rl)) {
    if (!b || typeof b !== 'object' || Object.keys(b).some((k) => !BUDGET.has(k)) || Object.values(b).some((n) => !Number.isInteger(n))) return 'a rate limit has another shape.';
  }
  return null;
}

/**
 * `trigger`: the flow has a trigger, so the form shows retry and concurrency instead of the
 * endpoint's rate limits and replica reads, and allows a timeout of up to an hour.
 * @param {{value: any, set: (v: any) => void, trigger?: boolean}} o
 */
export function settingsForm(o) {
  const trigger = !!o.trigger;
  return withJson({ name: 'settings', value: o.value, set: o.set, empty: '{}', canShow: (v) => settingsProblem(v, trigger), build: (v, set) => build(v, set, trigger) });
}

/** @param {any} value @param {(v: any) => void} set @param {boolean} trigger */
function build(value, set, trigger) {
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
  const tx = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-transaction', 'aria-label': 'Transaction' },
    new Option('auto (default): writes share one transaction', ''),
    ...(trigger ? [] : [new Option('none: each statement commits on its own', 'none')]),
    new Option('serializable: run again on a serialization failure', 'serializable')));
  tx.value = s.transaction === 'auto' ? '' : (s.transaction ?? '');
  tx.addEventListener('change', () => { if (tx.value) s.transaction = tx.value; else delete s.transaction; write(); });
  const txRow = h('div', { class: 'fm-fdetails' }, h('label', { class: 'fm-small' }, h('span', { text: 'transaction' }), tx));
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
  if (trigger) {
    /** The object `key` of the settings, made on first use; dropped when left empty. @param {string} key */
    const part = (key) => (/** @type {boolean} */ make) => {
      if (make) s[key] = s[key] || {};
      return s[key];
    };
    const drop = (/** @type {string} */ key) => () => { if (s[key] && !Object.keys(s[key]).length) delete s[key]; };
    const keyInput = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fl-mono fm-conc-key', value: s.concurrency?.key?.$rhai ?? '', spellcheck: 'false', placeholder: 'input.customer_id', 'aria-label': 'one at a time per (Rhai expression over input, event)' }));
    keyInput.addEventListener('input', () => {
      const text = keyInput.value.trim();
      if (text) { s.concurrency = s.concurrency || {}; s.concurrency.key = { $rhai: text }; } else if (s.concurrency) delete s.concurrency.key;
      drop('concurrency')();
      write();
    });
    return h('div', { class: 'fm-settings' },
      h('div', { class: 'fm-fdetails' },
        num('timeout (ms)', top, 'timeout_ms', { min: '10', max: '3600000', placeholder: '10000' })),
      txRow,
      h('p', { class: 'fl-help', text: 'Retries (a 5xx fail, a timeout or an error; a 4xx fail discards at once):' }),
      h('div', { class: 'fm-fdetails fm-retry' },
        num('attempts at most', part('retry'), 'max_attempts', { min: '1', max: '100', placeholder: '5' }, drop('retry')),
        num('first wait (ms)', part('retry'), 'backoff_ms', { min: '100', max: '3600000', placeholder: '1000' }, drop('retry')),
        num('longest wait (ms)', part('retry'), 'max_backoff_ms', { min: '100', max: '86400000', placeholder: '3600000' }, drop('retry'))),
      h('p', { class: 'fl-help', text: 'Runs at the same time, across all instances (empty: no limit):' }),
      h('div', { class: 'fm-fdetails fm-concurrency' },
        num('at most', part('concurrency'), 'limit', { min: '1', max: '1000' }, () => { if (s.concurrency && s.concurrency.limit === undefined) delete s.concurrency; }),
        h('label', { class: 'fm-small' }, h('span', { text: 'per' }), keyInput)));
  }
  return h('div', { class: 'fm-settings' },
    h('div', { class: 'fm-fdetails' },
      num('timeout (ms)', top, 'timeout_ms', { min: '10', max: '300000', placeholder: '10000' }),
      h('label', { class: 'fm-small' }, h('span', { text: 'reads from' }), read)),
    txRow,
    h('p', { class: 'fl-help', text: 'Rate limits (empty: none of its own):' }),
    row('per_ip', 'per client address'), row('per_token', 'per token'));
}
