// @ts-check
/**
 * The run panel: path params, query, body, an end-user token and "keep writes"; runs the saved
 * draft through `FlowState.run` and shows the response. The trace itself is drawn by the canvas
 * on the state's `run` event.
 */
import { h } from '../dom.js';
import { diagList, errorBox } from '../ui.js';
import { fmtUs } from './canvas.js';

/**
 * @param {import('./state.js').FlowState} state
 * @param {() => Promise<boolean>} save saves the draft first (true when the server has it)
 * @returns {{el: HTMLElement, run: () => Promise<void>, focus: () => void}}
 */
export function runPanel(state, save) {
  const jsonBox = (/** @type {string} */ label, /** @type {string} */ id, /** @type {string} */ value) => {
    const ta = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'fl-input fl-code', id, rows: 2, spellcheck: 'false', value }));
    return { ta, field: h('div', { class: 'fl-run-field' }, h('label', { for: id, text: label }), ta) };
  };
  const params = jsonBox('Path params (JSON)', 'fl-run-params', '{}');
  const query = jsonBox('Query (JSON)', 'fl-run-query', '{}');
  const method = state.doc.endpoint?.method;
  const body = jsonBox('Body (JSON)', 'fl-run-body', method && !['GET', 'DELETE'].includes(method) ? '{}' : '');
  body.field.classList.add('fl-span2');
  const token = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', id: 'fl-run-token', placeholder: 'end-user bearer token (optional)', spellcheck: 'false' }));
  const commit = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id: 'fl-run-commit' }));
  const result = h('div', { class: 'fl-run-result', 'aria-live': 'polite' });
  const el = h('section', { class: 'fl-run', hidden: true, 'aria-label': 'Run the draft' },
    h('div', { class: 'fl-run-inputs' }, params.field, query.field, body.field,
      h('div', { class: 'fl-run-field' }, h('label', { for: 'fl-run-token', text: 'Token' }), token),
      h('div', { class: 'fl-run-field fl-run-actions' },
        h('label', { class: 'fl-check' }, commit, ' Keep writes'),
        h('div', { class: 'fl-run-buttons' },
          h('button', { class: 'fl-btn fl-primary', type: 'button', id: 'fl-run', text: 'Run draft', onclick: () => run() }),
          h('button', { class: 'fl-btn', type: 'button', text: 'Clear trace', onclick: () => { state.clearRun(); result.replaceChildren(); } })))),
    result);

  /** @param {HTMLTextAreaElement} ta @param {string} name @param {any} empty */
  const parse = (ta, name, empty) => {
    const t = ta.value.trim();
    if (!t) return empty;
    try { return JSON.parse(t); } catch (e) { throw new Error(`${name} is not JSON: ${/** @type {Error} */ (e).message}`); }
  };

  async function run() {
    let req;
    try {
      req = { params: parse(params.ta, 'Path params', {}), query: parse(query.ta, 'Query', {}), body: parse(body.ta, 'Body', null), headers: /** @type {Record<string, string>} */ ({}), commit: commit.checked };
    } catch (e) { result.replaceChildren(errorBox(e)); return; }
    if (token.value.trim()) req.headers.authorization = `Bearer ${token.value.trim()}`;
    if (state.dirty() && !(await save())) { result.replaceChildren(errorBox({ message: 'The draft could not be saved, so it was not run.' })); return; }
    result.replaceChildren(h('p', { class: 'fl-muted', text: 'Running…' }));
    try {
      result.replaceChildren(...response(await state.run(req)));
    } catch (e) {
      result.replaceChildren(errorBox(e));
    }
  }

  return { el, run, focus: () => params.ta.focus() };
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
    headers.length ? h('table', { class: 'fl-table fl-headers' }, headers.map(([k, v]) => h('tr', null, h('th', { text: k }), h('td', { text: String(v) })))) : '',
    h('pre', { class: 'fl-pre fl-run-body', tabindex: '0', text: typeof r.response?.body === 'string' ? r.response.body : JSON.stringify(r.response?.body, null, 2) }),
    h('p', { class: 'fl-hint', text: 'The trace is on the canvas: highlighted wires fired; hover or select a node for its time and output.' }),
  ];
}
