// @ts-check
/**
 * The run panel: the request as a form built from the input schema (`runform.js`) or, with
 * **JSON**, as raw JSON; an end-user token and "keep writes"; runs the saved draft through
 * `FlowState.run` and shows the response (status, headers, and the body the live endpoint
 * would answer, error envelope included), with **Save as test case** for that run and the
 * flow's test cases under it (`testcase.js`). Below, the endpoint's recent live requests
 * (`recent.js`), of which captured ones can be replayed here. The trace itself is drawn by the
 * canvas on the state's `run` event.
 */
import { h } from '../dom.js';
import { diagList, errorBox } from '../ui.js';
import { fmtUs } from './canvas.js';
import { runForm, samplePathValues } from './runform.js';
import { recentRequests } from './recent.js';
import { sampleJobInput } from './jobinput.js';
import { testCases } from './testcase.js';

/** What the form is built from; the form is rebuilt when it changes. @param {any} doc */
const shapeOf = (doc) => JSON.stringify([doc.endpoint?.method, doc.endpoint?.path, doc.input || null, doc.trigger?.kind, doc.trigger?.table]);

/**
 * @param {import('./state.js').FlowState} state
 * @param {() => Promise<boolean>} save saves the draft first (true when the server has it)
 * @returns {{el: HTMLElement, run: () => Promise<void>, focus: () => void}}
 */
export function runPanel(state, save) {
  const jsonBox = (/** @type {string} */ label, /** @type {string} */ id) => {
    const ta = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'fl-input fl-code', id, rows: 2, spellcheck: 'false' }));
    return { ta, field: h('div', { class: 'fl-run-field' }, h('label', { for: id, text: label }), ta) };
  };
  const params = jsonBox('Path params (JSON)', 'fl-run-params');
  const query = jsonBox('Query (JSON)', 'fl-run-query');
  const body = jsonBox('Body (JSON)', 'fl-run-body');
  body.field.classList.add('fl-span2');
  const jsonView = h('div', { class: 'fl-run-json', hidden: true }, params.field, query.field, body.field);
  // A flow with a trigger runs as a job: one JSON input instead of a request.
  const jobInput = jsonBox('Job input (JSON)', 'fl-run-input');
  jobInput.ta.rows = 6;
  jobInput.field.classList.add('fl-span2');
  const isJob = () => !!state.doc.trigger;

  let form = runForm(state.doc);
  let shape = shapeOf(state.doc);
  const formHost = h('div', { class: 'fl-run-formhost' }, form.el);
  const prefill = () => { const f = form; samplePathValues(state.doc).then((v) => f.prefill(v)).catch(() => {}); };
  prefill();

  let jsonMode = false;
  const modeBtn = h('button', { class: 'fl-btn', type: 'button', id: 'fl-run-json-toggle', 'aria-pressed': 'false',
    'aria-controls': 'fl-run-inputs-area', text: 'JSON', title: 'Show the request as raw JSON', onclick: () => setMode(!jsonMode) });
  const notice = h('div', { class: 'fl-run-notice', 'aria-live': 'polite' });
  const token = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', id: 'fl-run-token', placeholder: 'end-user bearer token (optional)', spellcheck: 'false', autocomplete: 'off' }));
  // Run as a user without their token: the server signs a short-lived one (`as_user`), so a
  // builder sees what that user's access rules let through.
  const asUser = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', id: 'fl-run-as-user', placeholder: 'user id (optional)', spellcheck: 'false', autocomplete: 'off' }));
  const asRole = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', id: 'fl-run-as-role', placeholder: 'role claim (optional)', spellcheck: 'false', autocomplete: 'off' }));
  const commit = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id: 'fl-run-commit' }));
  const result = h('div', { class: 'fl-run-result', 'aria-live': 'polite' });
  /** Headers of a replayed request, sent with the next runs until another request is loaded. */
  /** @type {Record<string, string>} */
  let replayHeaders = {};

  const recent = recentRequests(() => state.doc, (entry) => replay(entry));
  const cases = testCases(state);
  const title = h('span', { class: 'fl-run-title', text: 'Request' });
  const tokenField = h('div', { class: 'fl-run-field' }, h('label', { for: 'fl-run-token', text: 'Token' }), token,
    h('label', { for: 'fl-run-as-user', text: 'or run as user' }), asUser,
    h('label', { for: 'fl-run-as-role', text: 'with role' }), asRole);
  const el = h('section', { class: 'fl-run', hidden: true, 'aria-label': 'Run the draft' },
    h('div', { class: 'fl-run-inputs' },
      h('div', { class: 'fl-run-bar fl-span2' }, title, modeBtn),
      h('div', { class: 'fl-span2', id: 'fl-run-inputs-area' }, formHost, jsonView, jobInput.field),
      notice,
      tokenField,
      h('div', { class: 'fl-run-field fl-run-actions' },
        h('label', { class: 'fl-check' }, commit, ' Keep writes'),
        h('div', { class: 'fl-run-buttons' },
          h('button', { class: 'fl-btn fl-primary', type: 'button', id: 'fl-run', text: 'Run draft', onclick: () => run() }),
          h('button', { class: 'fl-btn', type: 'button', text: 'Clear trace', onclick: () => { state.clearRun(); result.replaceChildren(); cases.clear(); } })))),
    h('div', { class: 'fl-run-out' }, result, cases.el),
    recent.el);

  /** Shows the job input or the request, as what runs the flow says; a new kind gets a sample. */
  function applyKind() {
    const job = isJob();
    title.textContent = job ? `Job input (${state.doc.trigger.kind})` : 'Request';
    jobInput.field.hidden = !job;
    formHost.hidden = job || jsonMode;
    jsonView.hidden = job || !jsonMode;
    modeBtn.hidden = job;
    tokenField.hidden = job;
    recent.el.hidden = job;
    if (job && !jobInput.ta.value.trim()) jobInput.ta.value = JSON.stringify(sampleJobInput(state.doc, state.tables), null, 2);
  }
  applyKind();

  /** Rebuilds the form when the endpoint's path or input schemas changed, keeping what it can. */
  function rebuildIfChanged() {
    if (shapeOf(state.doc) === shape) return;
    jobInput.ta.value = '';
    let kept = null;
    try { kept = form.get(); } catch { /* an unparsable box is dropped */ }
    form = runForm(state.doc);
    shape = shapeOf(state.doc);
    if (kept) form.set(kept);
    formHost.replaceChildren(form.el);
    prefill();
    applyKind();
  }

  /** @param {any} v */
  const text = (v) => (v === undefined || v === null ? '' : JSON.stringify(v, null, 2));
  /** @param {HTMLTextAreaElement} ta @param {string} name @param {any} empty */
  const parse = (ta, name, empty) => {
    const t = ta.value.trim();
    if (!t) return empty;
    try { return JSON.parse(t); } catch (e) { throw new Error(`${name} is not JSON: ${/** @type {Error} */ (e).message}`); }
  };
  const fromJson = () => ({ params: parse(params.ta, 'Path params', {}), query: parse(query.ta, 'Query', {}), body: parse(body.ta, 'Body', null) });

  /** The request being edited, from whichever view is shown. */
  const current = () => (jsonMode ? fromJson() : form.get());

  /** @param {{params: any, query: any, body: any}} r */
  function fill(r) {
    form.set(r);
    params.ta.value = text(r.params ?? {});
    query.ta.value = text(r.query ?? {});
    body.ta.value = text(r.body);
  }

  /** @param {boolean} json */
  function setMode(json) {
    try {
      if (json) { const r = form.get(); fill(r); } else { form.set(fromJson()); }
    } catch (e) { notice.replaceChildren(errorBox(e)); return; }
    notice.replaceChildren();
    jsonMode = json;
    jsonView.hidden = !json;
    formHost.hidden = json;
    // A toggle keeps its name; its pressed state says which view is shown.
    modeBtn.setAttribute('aria-pressed', String(json));
    modeBtn.title = json ? 'Back to the form' : 'Show the request as raw JSON';
  }

  /** Loads a captured request into the panel and runs it, unless values were redacted. @param {any} entry */
  function replay(entry) {
    const r = entry.request || {};
    rebuildIfChanged();
    fill({ params: r.params || {}, query: r.query || {}, body: r.body ?? null });
    const redacted = new Set(r.redacted || []);
    replayHeaders = {};
    for (const [k, v] of Object.entries(r.headers || {})) {
      if (!redacted.has(`/headers/${k}`) && typeof v === 'string') replayHeaders[k] = v;
    }
    const what = `${entry.method} ${entry.path} (${entry.status}, ${new Date(entry.at).toLocaleString()})`;
    const problems = [];
    if (redacted.size) problems.push(h('p', null, 'These values were redacted when the request was captured; fill them in, then run: ', h('code', { text: [...redacted].join(', ') })));
    if (r.body_omitted) problems.push(h('p', { text: 'The body was over 16 KiB, so it was not kept; enter one, then run.' }));
    notice.replaceChildren(h('div', { class: 'fl-run-replay', role: 'status' },
      h('strong', { text: `Replaying ${what}` }),
      Object.keys(replayHeaders).length ? h('p', { class: 'fl-hint', text: `With its ${Object.keys(replayHeaders).length} recorded headers.` }) : null,
      ...problems,
      h('button', { class: 'fl-btn', type: 'button', text: 'Forget the recorded headers', onclick: () => { replayHeaders = {}; notice.replaceChildren(); } })));
    if (!problems.length) run();
    else form.focus();
  }

  async function run() {
    rebuildIfChanged();
    /** @type {any} */
    let req;
    try {
      if (isJob()) {
        req = { input: parse(jobInput.ta, 'Job input', {}), commit: commit.checked };
      } else {
        const r = current();
        req = { params: r.params, query: r.query, body: r.body, headers: { ...replayHeaders }, commit: commit.checked };
        const t = token.value.trim();
        if (t) req.token = t;
        const user = asUser.value.trim();
        if (user) req.as_user = { id: user, claims: asRole.value.trim() ? { role: asRole.value.trim() } : {} };
      }
    } catch (e) { result.replaceChildren(errorBox(e)); return; }
    if (state.dirty() && !(await save())) { result.replaceChildren(errorBox({ message: 'The draft could not be saved, so it was not run.' })); return; }
    result.replaceChildren(h('p', { class: 'fl-muted', text: 'Running…' }));
    cases.clear();
    // What ran, for a test case saved from this run (the form may change before it is saved).
    const sent = { req: structuredClone(req), endpoint: structuredClone(state.doc.endpoint ?? null), trigger: structuredClone(state.doc.trigger ?? null) };
    try {
      const answer = await state.run(req);
      result.replaceChildren(...response(answer));
      if (answer?.response) cases.offer(sent, answer);
    } catch (e) {
      result.replaceChildren(errorBox(e));
    }
    recent.refresh();
  }

  return {
    el,
    run,
    focus: () => {
      rebuildIfChanged();
      cases.refresh();
      if (isJob()) { jobInput.ta.focus(); return; }
      recent.refresh();
      if (jsonMode) params.ta.focus(); else form.focus();
    },
  };
}

/** The answer of a debug run: status, time, error, headers, body. @param {any} r */
function response(r) {
  const st = r.response?.status;
  const cls = st >= 500 ? 'fl-pill fl-pill-bad' : st >= 400 ? 'fl-pill fl-pill-warn' : 'fl-pill fl-pill-live';
  const headers = Object.entries(r.response?.headers || {});
  return [
    h('div', { class: 'fl-run-head' }, h('span', { class: cls, text: `HTTP ${st}` }),
      h('span', { class: 'fl-muted', text: ` ${fmtUs(r.duration_us)} · ${r.trace.length} step${r.trace.length === 1 ? '' : 's'} · ${r.committed ? 'writes committed' : 'writes rolled back'}` })),
    r.error ? h('div', { class: 'fl-error', role: 'alert' }, h('strong', { text: `${r.error.code}: ${r.error.message}` }), r.error.node ? ` (node ${r.error.node})` : '',
      Array.isArray(r.error.details) && r.error.details.length ? diagList(r.error.details) : '') : '',
    headers.length ? h('table', { class: 'fl-table fl-headers' }, headers.map(([k, v]) => h('tr', null, h('th', { scope: 'row', text: k }), h('td', { text: String(v) })))) : '',
    h('p', { class: 'fl-run-caption', text: 'Body, as the live endpoint answers it:' }),
    h('pre', { class: 'fl-pre fl-run-body', tabindex: '0', 'aria-label': 'Response body', text: typeof r.response?.body === 'string' ? r.response.body : JSON.stringify(r.response?.body, null, 2) }),
    h('p', { class: 'fl-hint', text: 'The trace is on the canvas: highlighted wires fired; hover or select a node for its time and output.' }),
  ];
}
