// @ts-check
/**
 * Jobs: the background runs of flows with a trigger (docs/EVENTS.md). `#/jobs` lists them by
 * state (the discarded ones are the dead-letter list) and flow, newest first, with cursor
 * paging; `#/jobs/{id}` shows one job with every attempt (worker, times, outcome, error) and
 * opens an attempt's trace on the flow's canvas, as a debug run's. Retry and cancel act on
 * the job through the admin API (`/jobs/{id}/retry`, `/jobs/{id}/cancel`).
 */
import { api, ApiError } from './api.js';
import { h, replace, icon } from './dom.js';
import { confirmDialog, errorBox, toast } from './ui.js';

/** The states, in the order of the filter, with what each means to a builder. */
const STATES = /** @type {const} */ ([
  ['', 'All'],
  ['available', 'Waiting'],
  ['scheduled', 'Scheduled'],
  ['running', 'Running'],
  ['retryable', 'Retrying'],
  ['completed', 'Completed'],
  ['discarded', 'Failed (dead letters)'],
  ['cancelled', 'Cancelled'],
]);
const RETRYABLE = new Set(['discarded', 'cancelled', 'retryable']);
const CANCELLABLE = new Set(['available', 'scheduled', 'retryable']);
const PAGE = 50;

/** @param {HTMLElement} el @param {any} ctx */
export async function mount(el, ctx) {
  const id = ctx.params?.[0];
  if (id !== undefined) return showJob(el, Number(id));
  return showList(el);
}

/** The flows by name, for links to their canvas. @returns {Promise<Map<string, any>>} */
async function flowsByName() {
  const res = await api('GET', '/flows');
  return new Map((res.body.flows || []).map((/** @type {any} */ f) => [f.name, f]));
}

/** A state as a pill. @param {string} state */
function pill(state) {
  const label = STATES.find(([s]) => s === state)?.[1] || state;
  return h('span', { class: `tag job-state job-${state}`, text: label });
}

/** A time as the browser's local date and time, the exact value in a tooltip. @param {string | null | undefined} t */
function when(t) {
  if (!t) return h('span', { class: 'hint', text: '—' });
  const d = new Date(t);
  return h('time', { datetime: t, title: t, text: Number.isNaN(d.getTime()) ? t : d.toLocaleString() });
}

/** The last error of a job, as one line. @param {any} job */
function lastError(job) {
  const errs = job.errors || [];
  const e = errs[errs.length - 1];
  if (!e) return '';
  return `${e.code ? `${e.code}: ` : ''}${e.message || ''}`;
}

/** @param {HTMLElement} el */
async function showList(el) {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const filter = { state: params.get('state') || '', flow: params.get('flow') || '' };
  const body = h('div', { class: 'jobs-body', 'aria-busy': 'true' });
  const stateSel = /** @type {HTMLSelectElement} */ (h('select', { id: 'jobs-state', 'aria-label': 'State' }));
  const flowSel = /** @type {HTMLSelectElement} */ (h('select', { id: 'jobs-flow', 'aria-label': 'Flow' }, new Option('All flows', '')));
  replace(el,
    h('div', { class: 'page-head' },
      h('div', null, h('h1', { text: 'Jobs' }),
        h('p', { class: 'sub', text: 'Background runs of scheduled, table-triggered and enqueued flows. Failed jobs stay here until retried or cancelled.' })),
      h('div', { class: 'page-actions' },
        h('label', { class: 'sr-only', for: 'jobs-state', text: 'State' }), stateSel,
        h('label', { class: 'sr-only', for: 'jobs-flow', text: 'Flow' }), flowSel,
        h('button', { type: 'button', class: 'btn', id: 'jobs-refresh', onclick: () => load(null) }, icon('refresh'), 'Refresh'))),
    body);
  const flows = await flowsByName().catch(() => new Map());
  for (const f of [...flows.values()].filter((f) => f.trigger || !f.method).sort((a, b) => a.name.localeCompare(b.name))) flowSel.append(new Option(f.name, f.name));
  if (filter.flow && ![...flowSel.options].some((o) => o.value === filter.flow)) flowSel.append(new Option(filter.flow, filter.flow));
  flowSel.value = filter.flow;

  /** @type {string | null} */
  let cursor = null;
  /** @param {string | null} from */
  async function load(from) {
    body.setAttribute('aria-busy', 'true');
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (filter.state) q.set('state', filter.state);
    if (filter.flow) q.set('flow', filter.flow);
    if (from) q.set('cursor', from);
    try {
      const res = await api('GET', `/jobs?${q}`);
      draw(res.body, from !== null, flows);
      cursor = res.body.next_cursor || null;
    } catch (e) {
      replace(body, errorBox(e));
    }
    body.removeAttribute('aria-busy');
  }
  const counts = (/** @type {any} */ c) => {
    const sel = stateSel.value;
    stateSel.replaceChildren(...STATES.map(([s, label]) => {
      const n = s ? c?.[s] : Object.values(c || {}).reduce((a, b) => Number(a) + Number(b), 0);
      return new Option(n === undefined ? label : `${label} (${n})`, s);
    }));
    stateSel.value = sel || filter.state;
  };
  /** @param {any} page @param {boolean} more @param {Map<string, any>} flowMap */
  function draw(page, more, flowMap) {
    counts(page.counts);
    const jobs = page.jobs || [];
    const rows = jobs.map((/** @type {any} */ j) => h('tr', { dataset: { job: String(j.id) } },
      h('td', null, h('a', { href: `#/jobs/${j.id}`, class: 'mono', text: `#${j.id}` })),
      h('td', { class: 'mono' }, flowMap.has(j.kind) ? h('a', { href: `#/flows/${flowMap.get(j.kind).id}`, text: j.kind }) : j.kind),
      h('td', null, pill(j.state)),
      h('td', { class: 'num', text: `${j.attempt}/${j.max_attempts}` }),
      h('td', null, when(j.finalized_at || j.attempted_at || j.scheduled_at)),
      h('td', { class: 'hint job-error', text: lastError(j) })));
    const table = h('table', { class: 'data jobs-table' },
      h('thead', null, h('tr', null, ['Job', 'Flow', 'State', 'Attempts', 'When', 'Last error'].map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', null, rows));
    const moreBtn = page.next_cursor ? h('button', { type: 'button', class: 'btn', id: 'jobs-more', onclick: () => load(cursor) }, 'Older jobs') : null;
    if (more) {
      body.querySelector('tbody')?.append(...rows);
      body.querySelector('#jobs-more')?.remove();
      if (moreBtn) body.append(moreBtn);
      return;
    }
    replace(body, jobs.length ? table : h('div', { class: 'empty' }, h('p', { text: filter.state || filter.flow ? 'No job matches.' : 'No jobs yet. Flows with a schedule, a table trigger or a job trigger run here once published.' })), moreBtn);
  }
  const refilter = () => {
    filter.state = stateSel.value;
    filter.flow = flowSel.value;
    const q = new URLSearchParams();
    if (filter.state) q.set('state', filter.state);
    if (filter.flow) q.set('flow', filter.flow);
    history.replaceState(null, '', `#/jobs${q.toString() ? `?${q}` : ''}`);
    load(null);
  };
  stateSel.addEventListener('change', refilter);
  flowSel.addEventListener('change', refilter);
  counts(undefined);
  await load(null);
}

/** @param {HTMLElement} el @param {number} id */
async function showJob(el, id) {
  let res;
  try {
    res = await api('GET', `/jobs/${id}`);
  } catch (e) {
    replace(el, errorBox(e), h('p', null, h('a', { href: '#/jobs', text: 'All jobs' })));
    return;
  }
  const job = res.body.job || res.body;
  const attempts = res.body.attempts || job.attempts || [];
  const flows = await flowsByName().catch(() => new Map());
  const flow = flows.get(job.kind);
  const act = async (/** @type {'retry' | 'cancel'} */ what) => {
    if (what === 'cancel' && !(await confirmDialog({ title: `Cancel job #${id}?`, message: `It will not run again unless retried.`, confirm: 'Cancel the job', danger: true }))) return;
    try {
      await api('POST', `/jobs/${id}/${what}`, { body: {} });
      toast(what === 'retry' ? `Job #${id} will run again now.` : `Job #${id} cancelled.`, 'success');
      await showJob(el, id);
    } catch (e) {
      toast(e instanceof ApiError ? e.message : String(e), 'error');
    }
  };
  const facts = [
    ['Flow', flow ? h('a', { href: `#/flows/${flow.id}`, class: 'mono', text: job.kind }) : h('span', { class: 'mono', text: job.kind })],
    ['State', pill(job.state)],
    ['Attempts', `${job.attempt} of at most ${job.max_attempts}`],
    ['Created', when(job.created_at)],
    ['Scheduled for', when(job.scheduled_at)],
    ['Finished', when(job.finalized_at)],
    ['Made by', job.source?.kind ? `${job.source.kind}${job.source.flow ? ` (${job.source.flow})` : ''}` : '—'],
    ['Unique key', job.unique_key ? h('code', { text: job.unique_key }) : '—'],
  ];
  replace(el,
    h('div', { class: 'page-head' },
      h('div', null,
        h('p', { class: 'crumbs' }, h('a', { href: '#/jobs', text: 'Jobs' })),
        h('h1', { class: 'mono', text: `Job #${id}` })),
      h('div', { class: 'page-actions' },
        RETRYABLE.has(job.state) ? h('button', { type: 'button', class: 'btn btn-primary', id: 'job-retry', onclick: () => act('retry') }, icon('refresh'), 'Retry now') : null,
        CANCELLABLE.has(job.state) ? h('button', { type: 'button', class: 'btn btn-danger', id: 'job-cancel', onclick: () => act('cancel') }, icon('close'), 'Cancel') : null)),
    h('section', { class: 'panel', 'aria-labelledby': 'job-facts' },
      h('h2', { id: 'job-facts', text: 'Job' }),
      h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', { text: String(k) }), h('dd', null, v)])),
      h('h3', { text: 'Input' }),
      h('pre', { class: 'code-block', tabindex: '0', 'aria-label': 'Input', text: JSON.stringify(job.args ?? {}, null, 2) })),
    h('section', { class: 'panel', 'aria-labelledby': 'job-attempts' },
      h('h2', { id: 'job-attempts', text: 'Attempts' }),
      attempts.length
        ? h('ol', { class: 'attempts' }, attempts.map((/** @type {any} */ a) => h('li', { class: 'attempt', dataset: { attempt: String(a.attempt) } },
          h('div', { class: 'attempt-head' },
            h('strong', { text: `Attempt ${a.attempt}` }), ' ', h('span', { class: `tag job-outcome job-${a.outcome || 'running'}`, text: a.outcome || 'running' }),
            h('span', { class: 'hint', text: ` on ${a.worker || '?'} · ` }), when(a.started_at),
            a.finished_at ? h('span', { class: 'hint', text: ` · ${duration(a.started_at, a.finished_at)}` }) : null),
          a.error ? h('p', { class: 'job-error', role: 'note', text: `${a.error.code ? `${a.error.code}: ` : ''}${a.error.message || JSON.stringify(a.error)}${a.error.node ? ` (node ${a.error.node})` : ''}` }) : null,
          flow && a.trace ? h('a', { class: 'btn btn-sm', href: `#/flows/${flow.id}/jobs/${id}/${a.attempt}` }, icon('eye'), 'Show the trace on the canvas') : null)))
        : h('p', { class: 'hint', text: 'Not run yet.' })));
}

/** @param {string} a @param {string} b */
function duration(a, b) {
  const ms = new Date(b).getTime() - new Date(a).getTime();
  if (!Number.isFinite(ms)) return '';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}
