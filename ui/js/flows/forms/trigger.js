// @ts-check
/**
 * What runs a flow (FLOW-FORMAT.md, "Triggers"): an HTTP endpoint, a schedule, a change to a
 * table, a background job, or nothing (a function other flows call). `runsOnSelect` switches
 * the document between them; `scheduleForm` and `tableTriggerForm` edit a trigger without JSON.
 * The schedule form shows the next fire times in its time zone, asked from the server
 * (`POST /schedules/preview`), with the cron error inline.
 */
import { api, ApiError } from '../../api.js';
import { h, uid } from '../../dom.js';
import { filterWidget } from './filter.js';
import { columnsOf } from './names.js';

/** The choices, in the order the select shows them. */
export const RUNS_ON = /** @type {const} */ ([
  ['endpoint', 'HTTP endpoint'],
  ['schedule', 'Schedule'],
  ['table', 'Table change'],
  ['job', 'Background job'],
  ['function', 'Function (called by other flows)'],
]);

/** What runs the flow now. @param {any} doc @returns {string} */
export function runsOn(doc) {
  if (doc.endpoint) return 'endpoint';
  return doc.trigger?.kind || 'function';
}

/** The settings only endpoints read, and those only trigger flows read. */
const ENDPOINT_SETTINGS = ['capture', 'rate_limit', 'read_from'];
const TRIGGER_SETTINGS = ['retry', 'concurrency'];

/**
 * Turns the document into a flow run by `to`, keeping what still applies (the nodes, the body
 * schema, the timeout) and dropping what does not (the path and its params for a trigger; retry
 * and concurrency for an endpoint). Pure: mutates `d` only.
 * @param {any} d @param {string} to @param {string} [timezone]
 */
export function switchRunsOn(d, to, timezone = 'UTC') {
  if (runsOn(d) === to) return;
  delete d.endpoint;
  delete d.trigger;
  if (to === 'endpoint') {
    d.endpoint = { method: 'POST', path: `/${String(d.name || 'flow').replace(/_/g, '-')}` };
  } else if (to === 'schedule') {
    d.trigger = { kind: 'schedule', cron: '0 8 * * *', timezone };
  } else if (to === 'table') {
    d.trigger = { kind: 'table', table: '', on: ['insert'] };
  } else if (to === 'job') {
    d.trigger = { kind: 'job' };
  }
  if (to !== 'endpoint' && d.input) {
    delete d.input.params;
    delete d.input.query;
    if (!Object.keys(d.input).length) delete d.input;
  }
  const drop = to === 'endpoint' ? TRIGGER_SETTINGS : ENDPOINT_SETTINGS;
  if (d.settings) {
    for (const k of drop) delete d.settings[k];
    if (to !== 'endpoint' && to !== 'function') delete d.settings.rate_limit;
    if (to === 'function') for (const k of TRIGGER_SETTINGS) delete d.settings[k];
    if (d.settings.timeout_ms > 300000 && !d.trigger) d.settings.timeout_ms = 300000;
    if (!Object.keys(d.settings).length) delete d.settings;
  }
}

/** The browser's own time zone, the default of a new schedule. */
export function localZone() {
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch { return 'UTC'; }
}

/** A labelled control in the trigger forms. @param {string} label @param {HTMLElement} control @param {string} [help] */
function row(label, control, help) {
  const id = uid('fl-tr');
  control.id = id;
  return h('div', { class: 'fm-trow' },
    h('label', { class: 'fl-label', for: id, text: label }), control,
    help ? h('div', { class: 'fl-help', text: help }) : null);
}

/** A select of `[value, label]` pairs. @param {string[][]} options @param {string} value */
function select(options, value) {
  const s = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input' }));
  for (const [v, l] of options) s.append(new Option(l, v));
  s.value = value;
  return s;
}

let zoneList = /** @type {HTMLDataListElement | null} */ (null);
/** One datalist of the IANA zone names the browser knows, shared by every schedule form. */
function zones() {
  if (zoneList?.isConnected) return zoneList.id;
  zoneList = /** @type {HTMLDataListElement} */ (h('datalist', { id: uid('fl-zones') }));
  /** @type {string[]} */
  let names = ['UTC'];
  try { names = /** @type {any} */ (Intl).supportedValuesOf('timeZone'); } catch { /* an older browser: type the name */ }
  for (const n of names) zoneList.append(h('option', { value: n }));
  document.body.append(zoneList);
  return zoneList.id;
}

/**
 * The schedule trigger's form: cron, time zone, catch-up and overlap policies, and the next five
 * fire times (or the cron or time zone error) from the server.
 * @param {{value: any, set: (v: any) => void}} o
 */
export function scheduleForm(o) {
  const t = { ...o.value };
  const write = () => o.set({ ...t });
  const cron = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fl-mono fm-cron', value: t.cron || '', spellcheck: 'false', autocomplete: 'off', placeholder: '0 8 * * 1-5' }));
  const tz = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-tz', value: t.timezone || '', spellcheck: 'false', autocomplete: 'off', list: zones(), placeholder: 'Europe/Paris' }));
  const catchUp = select([['latest', 'run the latest one (default)'], ['skip', 'skip them'], ['all', 'run all of them']], t.catch_up || 'latest');
  const max = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-num', type: 'number', min: '1', max: '1000', step: '1', value: t.catch_up_max ?? '', placeholder: '10' }));
  const lateness = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-num', type: 'number', min: '1', max: '10080', step: '1', value: t.max_lateness_ms ? String(Math.round(t.max_lateness_ms / 60000)) : '', placeholder: '60' }));
  const overlap = select([['skip', 'skip the new one (default)'], ['queue', 'run it after the current one'], ['allow', 'run both at once']], t.overlap || 'skip');
  const next = h('ol', { class: 'fm-next' });
  const status = h('p', { class: 'fl-hint fm-next-status', role: 'status', 'aria-live': 'polite' });
  const maxRow = row('At most, when running all', max, 'Missed occurrences run when catching up (1–1000).');
  const showMax = () => { maxRow.hidden = catchUp.value !== 'all'; };
  showMax();

  let seq = 0;
  let timer = 0;
  const preview = () => {
    clearTimeout(timer);
    timer = window.setTimeout(async () => {
      const mine = ++seq;
      if (!t.cron || !t.timezone) { next.replaceChildren(); status.textContent = 'Type a cron expression and a time zone to see the next runs.'; return; }
      try {
        const res = await api('POST', '/schedules/preview', { body: { cron: t.cron, timezone: t.timezone, count: 5 } });
        if (mine !== seq) return;
        const times = /** @type {string[]} */ (res.body.times || res.body.next || []);
        status.textContent = `Next runs (${t.timezone}):`;
        next.replaceChildren(...times.map((s) => h('li', { class: 'fl-mono', text: readable(s) })));
        cron.removeAttribute('aria-invalid');
        tz.removeAttribute('aria-invalid');
      } catch (e) {
        if (mine !== seq) return;
        next.replaceChildren();
        const err = e instanceof ApiError ? e : null;
        const at = String(err?.details?.[0]?.pointer || err?.details?.[0]?.field || '');
        status.textContent = err ? err.message : 'The next runs could not be computed.';
        (at.includes('timezone') ? tz : cron).setAttribute('aria-invalid', 'true');
      }
    }, 300);
  };
  cron.addEventListener('input', () => { t.cron = cron.value.trim(); write(); preview(); });
  tz.addEventListener('input', () => { t.timezone = tz.value.trim(); write(); preview(); });
  catchUp.addEventListener('change', () => { if (catchUp.value === 'latest') delete t.catch_up; else t.catch_up = catchUp.value; showMax(); write(); });
  max.addEventListener('input', () => { if (max.value === '') delete t.catch_up_max; else if (Number.isInteger(Number(max.value))) t.catch_up_max = Number(max.value); write(); });
  lateness.addEventListener('input', () => { if (lateness.value === '') delete t.max_lateness_ms; else if (Number.isInteger(Number(lateness.value))) t.max_lateness_ms = Number(lateness.value) * 60000; write(); });
  overlap.addEventListener('change', () => { if (overlap.value === 'skip') delete t.overlap; else t.overlap = overlap.value; write(); });
  preview();
  return h('div', { class: 'fm-trigger fm-schedule', role: 'group', 'aria-label': 'Schedule' },
    row('Cron expression *', cron, '5 fields: minute hour day-of-month month day-of-week (e.g. 0 8 * * 1-5 is 08:00 on weekdays); 6 with seconds first.'),
    row('Time zone *', tz, 'The IANA name the cron is read in; daylight saving changes are handled (docs/FLOW-FORMAT.md).'),
    status, next,
    row('Missed while Sluice was down', catchUp),
    maxRow,
    row('Too late after (minutes)', lateness, 'An occurrence found later than this is skipped and recorded (default 60).'),
    row('When the previous run is not finished', overlap));
}

/** An RFC 3339 time as "Mon 2026-03-30 08:00 +02:00". @param {string} s */
function readable(s) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::(\d{2}))?(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (!m) return s;
  const day = new Date(`${m[1]}T00:00:00Z`).toLocaleDateString('en-GB', { weekday: 'short', timeZone: 'UTC' });
  const secs = m[3] && m[3] !== '00' ? `:${m[3]}` : '';
  return `${day} ${m[1]} ${m[2]}${secs} ${m[4] === 'Z' ? '+00:00' : m[4]}`;
}

/**
 * The table trigger's form: the table (with change events on), the operations, the columns an
 * update must change, and a condition built like a db.query filter.
 * @param {{value: any, set: (v: any) => void, ctx: import('../widgets.js').FormContext}} o
 */
export function tableTriggerForm(o) {
  const t = { ...o.value, on: [...(o.value?.on || [])] };
  const write = () => {
    const out = { ...t };
    if (!out.columns?.length) delete out.columns;
    if (out.when === undefined) delete out.when;
    o.set(out);
  };
  const tables = o.ctx.tables();
  const table = select([['', tables.length ? '(pick a table)' : '(no tables yet)'], ...tables.map((x) => [x.name, x.events === false ? `${x.name} (change events off)` : x.name])], t.table || '');
  table.addEventListener('focus', () => { o.ctx.refreshTables(); });
  table.addEventListener('change', () => { t.table = table.value; delete t.columns; delete t.when; write(); o.ctx.rerender('.fm-trigger-table'); });
  table.classList.add('fm-trigger-table');
  const picked = tables.find((x) => x.name === t.table);
  const ops = h('div', { class: 'fm-checks', role: 'group', 'aria-label': 'Run on' }, ...['insert', 'update', 'delete'].map((op) => {
    const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', class: `fm-on-${op}`, checked: t.on.includes(op) }));
    box.addEventListener('change', () => {
      t.on = ['insert', 'update', 'delete'].filter((x) => (x === op ? box.checked : t.on.includes(x)));
      write();
    });
    return h('label', { class: 'fm-check' }, box, ` ${op}`);
  }));
  const cols = (columnsOf(tables, t.table) || []).filter((c) => c.type !== 'password' && !c.system);
  const colBox = h('div', { class: 'fm-checks', role: 'group', 'aria-label': 'Only when these columns change' }, ...cols.map((c) => {
    const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: (t.columns || []).includes(c.name) }));
    box.addEventListener('change', () => {
      const set = new Set(t.columns || []);
      if (box.checked) set.add(c.name); else set.delete(c.name);
      t.columns = cols.map((x) => x.name).filter((n) => set.has(n));
      write();
    });
    return h('label', { class: 'fm-check' }, box, ` ${c.name}`);
  }));
  const when = filterWidget({
    schema: {}, name: 'Condition', required: false, value: t.when,
    set: (v) => { t.when = v; write(); },
    ctx: { ...o.ctx, node: () => ({ table: t.table }) },
  });
  return h('div', { class: 'fm-trigger fm-table-trigger', role: 'group', 'aria-label': 'Table change' },
    row('Table *', table, picked && picked.events === false
      ? 'This table does not send change events yet: turn on "Send change events" in its schema designer.'
      : 'A table with change events on; every write is seen (endpoints, the data API, CSV import, db.sql, psql).'),
    h('div', { class: 'fm-trow' }, h('span', { class: 'fl-label', text: 'Run on *' }), ops),
    cols.length ? h('div', { class: 'fm-trow' }, h('span', { class: 'fl-label', text: 'Updates only when one of these changed' }), colBox,
      h('div', { class: 'fl-help', text: 'None ticked: any change.' })) : null,
    h('div', { class: 'fm-trow' }, h('span', { class: 'fl-label', text: 'Only rows where' }), when,
      h('div', { class: 'fl-help', text: 'The new row for inserts and updates, the old row for deletes. Empty: every row.' })));
}
