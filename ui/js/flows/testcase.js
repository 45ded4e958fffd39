// @ts-check
/**
 * The run panel's **Save as test case** (docs/TESTING.md): the request a debug run sent and the
 * response it got become one case of the flow's tests (`given.user` for a run as a user,
 * `when` the request as a client sends it, `then` its status and JSON body), added with
 * `POST /flows/{id}/tests/cases`; the flow's cases are listed from `GET /flows/{id}/tests`.
 * `caseFrom` and the helpers above it are pure; `testCases` is the small form under the result.
 * The server checks the case and answers its problems; nothing is checked twice here.
 */
import { h } from '../dom.js';
import { api } from '../api.js';
import { errorBox } from '../ui.js';
import { pathParams } from './runform.js';

/**
 * A debug run as the panel sent it: the body of `POST /flows/{id}/run` and what the flow was
 * (its endpoint and trigger) when it ran.
 * @typedef {{req: any, endpoint: any, trigger: any}} SentRun
 */

/** The most a case name may be (the tests schema's `maxLength`). */
const NAME_MAX = 200;

/**
 * `pattern` (`/todos/{id}`) with its parameters put in (`/todos/2`). Values go in as sent: the
 * runner reads them back from the path segment by segment, without decoding.
 * @param {string} pattern @param {Record<string, any>} params
 */
export function fillPath(pattern, params) {
  const missing = pathParams(pattern).filter((n) => params?.[n] === undefined || params[n] === null || params[n] === '');
  if (missing.length) throw new Error(`The path parameter ${missing.join(', ')} had no value in this run, so the case would have no path.`);
  return pattern.replace(/\{([^}/]+)\}/g, (_, n) => String(params[n]));
}

/** A query or header value as the run sent it (the server reads non-text values as JSON text). @param {any} v */
const asText = (v) => (typeof v === 'string' ? v : JSON.stringify(v));

/** `obj` without its `undefined` members, or `undefined` when nothing is left. @param {Record<string, any>} obj */
function members(obj) {
  const out = Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
  return Object.keys(out).length ? out : undefined;
}

/**
 * The expected body: the response's when it is JSON. A 5xx envelope's `request_id` differs on
 * every request, so it is matched by its kind.
 * @param {any} response the run's `response`
 */
export function expectedBody(response) {
  if (response?.content_type !== 'json' || response.body === null || response.body === undefined) return undefined;
  const body = structuredClone(response.body);
  if (body && typeof body.error === 'object' && body.error && typeof body.error.request_id === 'string') body.error.request_id = { $type: 'string' };
  return body;
}

/**
 * The request part of a case for a flow with an endpoint: method, path (group base path
 * included, parameters put in), query, headers, body and token.
 * @param {SentRun} sent @param {string} basePath
 */
function whenRequest(sent, basePath) {
  const { req, endpoint } = sent;
  const query = Object.entries(req.query || {}).filter(([, v]) => v !== undefined);
  const headers = Object.entries(req.headers || {}).filter(([, v]) => v !== undefined);
  return members({
    method: String(endpoint.method || 'GET').toUpperCase(),
    path: basePath + fillPath(endpoint.path || '/', req.params || {}),
    query: query.length ? Object.fromEntries(query.map(([k, v]) => [k, typeof v === 'number' || typeof v === 'boolean' ? v : asText(v)])) : undefined,
    headers: headers.length ? Object.fromEntries(headers.map(([k, v]) => [k, asText(v)])) : undefined,
    body: req.body === null ? undefined : req.body,
    token: req.token || undefined,
  }) || {};
}

/**
 * One case of the tests format from a run: what it sent and what it answered. Empty members
 * are left out.
 * @param {string} name
 * @param {SentRun} sent
 * @param {any} answer the run's answer (`{response: {status, body, content_type}, ...}`)
 * @param {string} basePath the base path of the endpoint's API group (`""` for the default)
 */
export function caseFrom(name, sent, answer, basePath) {
  const { req } = sent;
  const user = req.as_user ? members({ id: String(req.as_user.id), claims: members(req.as_user.claims || {}) }) : undefined;
  const input = req.input !== undefined && !(typeof req.input === 'object' && req.input && !Array.isArray(req.input) && !Object.keys(req.input).length) ? req.input : undefined;
  /** @type {Record<string, any>} */
  const c = { name };
  const given = sent.trigger ? undefined : members({ user });
  if (given) c.given = given;
  c.when = sent.trigger ? (members({ input }) || {}) : whenRequest(sent, basePath);
  c.then = members({ status: answer.response?.status, body: expectedBody(answer.response) }) || {};
  return c;
}

/** The name a case starts with: `GET /todos/2 answers 200`. @param {SentRun} sent @param {any} answer @param {string} basePath */
export function suggestedName(sent, answer, basePath) {
  const status = answer.response?.status;
  let what;
  if (sent.trigger) what = `${sent.trigger.kind || 'job'} job`;
  else {
    try { what = `${String(sent.endpoint.method || 'GET').toUpperCase()} ${basePath}${fillPath(sent.endpoint.path || '/', sent.req.params || {})}`; } catch { what = `${sent.endpoint.method} ${sent.endpoint.path}`; }
  }
  return `${what} answers ${status}`.slice(0, NAME_MAX);
}

/** The base path of the endpoint's API group (`GET /groups`); the default group's is `""`. @param {any} endpoint */
async function basePathOf(endpoint) {
  const name = endpoint?.group || 'default';
  let groups;
  try {
    groups = (await api('GET', '/groups')).body.groups || [];
  } catch (e) {
    // A server without API groups serves every endpoint straight under /api.
    if (name === 'default') return '';
    throw new Error(`The base path of the API group ${name} could not be read: ${/** @type {Error} */ (e).message}`);
  }
  const group = groups.find((/** @type {any} */ g) => g.name === name);
  if (!group && name !== 'default') throw new Error(`The endpoint's API group ${name} does not exist.`);
  return group?.base_path || '';
}

/**
 * The "Save as test case" form and the list of the flow's cases, for the run panel's result
 * column. `offer` shows the form for a run that answered; `clear` hides it; `refresh` reloads
 * the list.
 * @param {import('./state.js').FlowState} state
 * @returns {{el: HTMLElement, offer: (sent: SentRun, answer: any) => void, clear: () => void, refresh: () => Promise<void>}}
 */
export function testCases(state) {
  /** @type {string[]} */
  let names = [];
  /** @type {{sent: SentRun, answer: any} | null} */
  let last = null;
  /** The name last put in the box, so a name the builder typed is not replaced by the next run's. */
  let suggested = '';

  const nameInput = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', id: 'fl-run-case-name', autocomplete: 'off', spellcheck: 'false',
    maxlength: NAME_MAX, 'aria-describedby': 'fl-run-case-hint' }));
  const hint = h('span', { class: 'fl-run-hint', id: 'fl-run-case-hint' });
  const saveBtn = /** @type {HTMLButtonElement} */ (h('button', { class: 'fl-btn', type: 'submit', id: 'fl-run-save-case', text: 'Save' }));
  const form = h('form', { class: 'fl-run-field fl-run-save', hidden: true, 'aria-label': 'Save as test case', onsubmit: (/** @type {Event} */ e) => { e.preventDefault(); save(); } },
    h('label', { for: 'fl-run-case-name', text: 'Save as test case' }),
    h('div', { class: 'fl-run-buttons' }, nameInput, saveBtn),
    hint);
  const status = h('div', { class: 'fl-run-case-status', id: 'fl-run-case-status', 'aria-live': 'polite' });
  const list = h('div', { class: 'fl-run-cases' });
  const el = h('div', { class: 'fl-run-tests' }, form, status, list);

  const explain = () => {
    hint.textContent = names.includes(nameInput.value.trim())
      ? 'A case of this name exists; saving replaces it.'
      : 'This request, with the status and body it answered; kept with the flow, run by sluice test.';
  };
  nameInput.addEventListener('input', explain);

  function renderList() {
    const n = names.length;
    list.replaceChildren(n
      ? h('div', null, h('p', { class: 'fl-run-caption', id: 'fl-run-cases-title', text: `${n} test case${n === 1 ? '' : 's'} for this flow:` }),
          h('ul', { id: 'fl-run-cases', 'aria-labelledby': 'fl-run-cases-title' }, names.map((c) => h('li', { text: c }))))
      : h('p', { class: 'fl-run-caption', text: 'No test cases for this flow yet. Run it, then save the run as one.' }));
    explain();
  }

  async function refresh() {
    try {
      const file = (await api('GET', `/flows/${state.id}/tests`)).body;
      names = (file.cases || []).map((/** @type {any} */ c) => String(c.name));
      renderList();
    } catch (e) {
      list.replaceChildren(h('p', { class: 'fl-run-caption', text: `The test cases could not be loaded: ${/** @type {Error} */ (e).message}` }));
    }
  }

  async function save() {
    if (!last) return;
    const { sent, answer } = last;
    saveBtn.disabled = true;
    status.replaceChildren(h('p', { class: 'fl-muted', text: 'Saving…' }));
    try {
      const base = sent.trigger ? '' : await basePathOf(sent.endpoint);
      const c = caseFrom(nameInput.value.trim(), sent, answer, base);
      const res = await api('POST', `/flows/${state.id}/tests/cases`, { body: c });
      names = (res.body.cases || []).map((/** @type {any} */ x) => String(x.name));
      renderList();
      const n = names.length;
      status.replaceChildren(h('p', { class: 'fl-run-saved', id: 'fl-run-case-saved' },
        res.status === 200 ? `Replaced the case “${c.name}”. ` : '',
        `Saved: ${n} test case${n === 1 ? '' : 's'} for this flow.`));
    } catch (e) {
      status.replaceChildren(errorBox(e));
    } finally {
      saveBtn.disabled = false;
    }
  }

  return {
    el,
    offer(sent, answer) {
      status.replaceChildren();
      // A function has no request of its own: it is tested through the endpoints that call it.
      if (!sent.endpoint && !sent.trigger) {
        last = null;
        form.hidden = true;
        status.replaceChildren(h('p', { class: 'fl-run-caption', text: 'A function is tested through the endpoints that call it, so this run cannot be saved as a test case.' }));
        return;
      }
      last = { sent, answer };
      if (!nameInput.value.trim() || nameInput.value === suggested) {
        suggested = suggestedName(sent, answer, '');
        nameInput.value = suggested;
        // The group's base path belongs in the name too; it comes with the groups.
        if (sent.endpoint) {
          basePathOf(sent.endpoint).then((base) => {
            if (nameInput.value === suggested) { suggested = suggestedName(sent, answer, base); nameInput.value = suggested; explain(); }
          }).catch(() => {});
        }
      }
      explain();
      form.hidden = false;
    },
    clear() {
      last = null;
      form.hidden = true;
      status.replaceChildren();
    },
    refresh,
  };
}
