// @ts-check
/**
 * The stack view: the same flow as the canvas, as a numbered list of steps that reads like
 * sentences ("2. Insert into books: title, pages"), branches indented under their step, jumps
 * to steps listed earlier, then the on_error handler and the nodes the request never reaches.
 * It renders from `FlowState` and edits through it, so the canvas shows every change: a step
 * selects its node (the inspector shows it); the selected step can get a step after it, be
 * moved up or down a linear chain, be wired with the Connect dialog, or be removed.
 */
import { h } from '../dom.js';
import { fmtUs } from './canvas.js';
import { START } from './model.js';
import { sentence, sentenceParts } from './summary.js';
import { afterPort, incoming, moveStep, removeStep, stackOf } from './steps.js';

/**
 * @typedef {{
 *   add: (from: string, port: string, anchor: HTMLElement) => void,
 *   connect: (id: string) => void,
 *   announce: (message: string) => void,
 * }} StackHost
 */

export class StackView {
  /** @param {import('./state.js').FlowState} state @param {StackHost} host */
  constructor(state, host) {
    this.state = state;
    this.host = host;
    this.el = h('div', { class: 'fl-stack', role: 'region', 'aria-label': 'Flow steps' });
    this.el.hidden = true;
    /** @type {string[]} What to focus after the next render (an edit made from the keyboard): the first of these that matches. */
    this.focusNext = [];
  }

  get shown() { return !this.el.hidden; }

  /** Rebuilds the list from the document (only while shown). */
  render() {
    if (!this.shown) return;
    const { doc, types } = this.state;
    const had = /** @type {HTMLElement | null} */ (document.activeElement)?.closest?.('.fl-stack-step');
    const keep = this.focusNext.length ? this.focusNext : had instanceof HTMLElement && this.el.contains(had) ? [stepCss(had.dataset.id || '')] : [];
    this.focusNext = [];
    const stack = stackOf(doc, types);
    const ep = doc.endpoint;
    const start = ep ? this.row(START, null, `The request comes in: ${ep.method} /api${ep.path}`, [{ text: 'The request comes in: ' }, { text: `${ep.method} /api${ep.path}`, value: true }])
      : this.row(START, null, 'The function is called');
    const sections = [
      h('ol', { class: 'fl-stack-list', 'aria-label': 'Steps' }, start, this.items(stack.main)),
    ];
    if (!stack.main.length) sections.push(h('p', { class: 'fl-hint', text: 'No steps yet: add one after the request.' }));
    if (stack.onError.length) {
      sections.push(h('h3', { class: 'fl-stack-head', text: 'When a step fails (on_error)' }),
        h('ol', { class: 'fl-stack-list' }, this.items(stack.onError)));
    }
    if (stack.loose.length) {
      sections.push(h('h3', { class: 'fl-stack-head', text: 'Not reached from the request' }),
        ...stack.loose.map((items) => h('ol', { class: 'fl-stack-list' }, this.items(items))));
    }
    this.el.replaceChildren(...sections);
    this.paintSelection();
    this.paintMarks();
    const target = keep.map((css) => this.el.querySelector(css)).find((el) => el instanceof HTMLElement);
    if (target) /** @type {HTMLElement} */ (target).focus();
  }

  /** @param {(import('./steps.js').Step | import('./steps.js').Jump)[]} items */
  items(items) {
    return items.map((it) => {
      if (it.kind === 'jump') {
        return h('li', { class: 'fl-stack-jump', value: String(it.n) }, h('span', { class: 'fl-muted', text: `go to step ${it.n} (${it.id})` }));
      }
      const node = this.state.doc.nodes[it.id];
      const type = this.state.types.get(node.type);
      const li = this.row(it.id, it.n, sentence(node, type), sentenceParts(node, type));
      for (const b of it.branches) {
        li.append(h('div', { class: 'fl-stack-branch' },
          h('span', { class: 'fl-stack-port', text: b.port === 'error' ? 'on error →' : `${b.port} →` }),
          b.items.length ? h('ol', { class: 'fl-stack-list' }, this.items(b.items))
            : [h('span', { class: 'fl-muted fl-stack-open', text: ' not connected ' }),
              h('button', { class: 'fl-btn fl-stack-add-branch', type: 'button', text: 'Add step', 'aria-label': `Add step: ${it.id}.${b.port}`,
                onclick: (/** @type {MouseEvent} */ e) => this.host.add(it.id, b.port, /** @type {HTMLElement} */ (e.currentTarget)) })]));
      }
      return li;
    });
  }

  /**
   * One step: its number, its sentence (a button that selects the node) and, while selected,
   * its actions.
   * @param {string} id @param {number | null} n @param {string} text
   * @param {import('./summary.js').Part[]} [parts] the sentence with its values marked
   */
  row(id, n, text, parts) {
    const node = id === START ? null : this.state.doc.nodes[id];
    const label = id === START ? text : `${n}. ${text}`;
    const step = h('button', { class: 'fl-stack-step', type: 'button', dataset: { id }, title: text,
      onclick: () => this.state.select([id]) },
      h('span', { class: 'fl-stack-n', text: id === START ? '▸' : `${n}.` }),
      h('span', { class: 'fl-stack-text' }, parts
        ? parts.map((p) => (p.value ? h('code', { class: 'fl-stack-value', text: p.text }) : p.text))
        : text),
      node ? h('span', { class: 'fl-stack-id', text: `${node.type} · ${id}` }) : null,
      h('span', { class: 'fl-stack-badge' }));
    step.setAttribute('aria-label', label);
    const li = h('li', { class: 'fl-stack-item', value: n === null ? undefined : String(n), dataset: { id } }, step);
    li.append(this.actions(id));
    return li;
  }

  /** The buttons of a step (shown while it is selected). @param {string} id */
  actions(id) {
    const { doc, types } = this.state;
    const port = afterPort(doc, types, id);
    const btn = (/** @type {string} */ text, /** @type {string} */ cls, /** @type {string} */ label, /** @type {(e: MouseEvent) => void} */ onclick, disabled = false) =>
      h('button', { class: `fl-btn fl-stack-${cls}`, type: 'button', text, 'aria-label': label, onclick, disabled });
    const row = h('div', { class: 'fl-stack-actions', role: 'group', 'aria-label': `Step ${id === START ? 'request' : id}` });
    const who = id === START ? 'the request' : id;
    row.append(btn('Add step after', 'add', `Add step after: ${who}`,
      (e) => { if (port) this.host.add(id, port, /** @type {HTMLElement} */ (e.currentTarget)); }, !port));
    row.append(btn('Connect…', 'connect', `Connect…: a port of ${who} (W)`, () => this.host.connect(id)));
    if (id !== START) {
      const probe = (/** @type {-1 | 1} */ dir) => moveStep(JSON.parse(JSON.stringify(doc)), types, id, dir);
      row.append(
        btn('Move up', 'up', `Move up: ${id}`, () => this.move(id, -1), !probe(-1)),
        btn('Move down', 'down', `Move down: ${id}`, () => this.move(id, 1), !probe(1)),
        btn('Remove', 'remove', `Remove: ${id}`, () => this.remove(id)));
    }
    return row;
  }

  /** @param {string} id @param {-1 | 1} dir */
  move(id, dir) {
    const where = dir < 0 ? 'up' : 'down';
    if (!moveStep(JSON.parse(JSON.stringify(this.state.doc)), this.state.types, id, dir)) {
      this.host.announce(`${id} cannot move ${where} here: only steps of a straight chain move`);
      return;
    }
    // The same button keeps focus, so it can be pressed again; else the step.
    this.focusNext = [`.fl-stack-item[data-id="${CSS.escape(id)}"] > .fl-stack-actions .fl-stack-${dir < 0 ? 'up' : 'down'}:not(:disabled)`, stepCss(id)];
    this.state.edit((d) => moveStep(d, this.state.types, id, dir));
    this.host.announce(`Moved ${id} ${where}`);
  }

  /** @param {string} id */
  remove(id) {
    // Focus goes to the step before it.
    const before = incoming(this.state.doc, id)[0]?.from;
    if (before) this.focusNext = [stepCss(before)];
    this.state.edit((d) => removeStep(d, this.state.types, id));
    this.state.select([]);
    this.host.announce(`Removed ${id}; the steps around it are joined`);
  }

  /** Moves focus to the step of node `id` (after adding it from the keyboard). @param {string} id */
  focusStep(id) {
    const step = this.el.querySelector(stepCss(id));
    if (step instanceof HTMLElement) step.focus();
  }

  /** Problems and the last run on the steps: a count of problems, the time, or "failed". */
  paintMarks() {
    if (!this.shown) return;
    /** @type {Map<string, number>} */
    const problems = new Map();
    for (const d of this.state.diagnostics) if (d.node) problems.set(d.node, (problems.get(d.node) || 0) + 1);
    const run = this.state.lastRun;
    const trace = new Map((run?.trace || []).map((/** @type {any} */ t) => [t.node, t]));
    for (const step of this.el.querySelectorAll('.fl-stack-step')) {
      if (!(step instanceof HTMLElement)) continue;
      const id = step.dataset.id || '';
      const n = problems.get(id) || 0;
      const t = trace.get(id);
      const failed = run?.error?.node === id || !!t?.error;
      step.classList.toggle('has-problem', n > 0);
      step.classList.toggle('was-run', !!t && !failed);
      step.classList.toggle('has-failed', failed);
      const badge = step.querySelector('.fl-stack-badge');
      if (badge) badge.textContent = n ? `${n} problem${n === 1 ? '' : 's'}` : failed ? 'failed' : t ? fmtUs(t.duration_us) : '';
    }
  }

  /** Marks the selected step and shows its actions. */
  paintSelection() {
    for (const li of this.el.querySelectorAll('.fl-stack-item')) {
      if (!(li instanceof HTMLElement)) continue;
      const on = this.state.selection.has(li.dataset.id || '');
      li.classList.toggle('is-selected', on);
      const step = li.querySelector(':scope > .fl-stack-step');
      step?.setAttribute('aria-current', on ? 'step' : 'false');
      const acts = li.querySelector(':scope > .fl-stack-actions');
      if (acts instanceof HTMLElement) acts.hidden = !on;
    }
  }
}

/** The CSS selector of a node's step button. @param {string} id */
const stepCss = (id) => `.fl-stack-step[data-id="${CSS.escape(id)}"]`;

/** Where the chosen view of a flow is kept (this browser only; not part of the document). */
const viewKey = (/** @type {number} */ id) => `sluice.flow.view.${id}`;

/**
 * The Canvas | Stack switch of a flow (two pressed-state buttons): calls `show` with the view
 * chosen, and keeps the choice per flow. `initial()` is the view the flow was last shown in;
 * the canvas the first time.
 * @param {number} id the flow @param {(view: 'canvas' | 'stack') => void} show
 */
export function viewSwitch(id, show) {
  /** @param {'canvas' | 'stack'} view */
  const choose = (view) => {
    for (const b of el.querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.view === view));
    try { localStorage.setItem(viewKey(id), view); } catch { /* storage disabled: not kept */ }
    show(view);
  };
  const el = h('div', { class: 'fl-view-switch', role: 'group', 'aria-label': 'View' },
    h('button', { class: 'fl-btn', type: 'button', text: 'Canvas', dataset: { view: 'canvas' }, 'aria-pressed': 'true', title: 'The flow as a graph', onclick: () => choose('canvas') }),
    h('button', { class: 'fl-btn', type: 'button', text: 'Stack', dataset: { view: 'stack' }, 'aria-pressed': 'false', title: 'The steps as a list', onclick: () => choose('stack') }));
  /** @returns {'canvas' | 'stack'} */
  const initial = () => {
    try { return localStorage.getItem(viewKey(id)) === 'stack' ? 'stack' : 'canvas'; } catch { return 'canvas'; }
  };
  return { el, choose, initial };
}

