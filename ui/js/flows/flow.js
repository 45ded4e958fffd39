// @ts-check
/**
 * The flow screen (`#/flows/{id}`): loads the flow and the node types, makes the `FlowState`,
 * and joins the views around it — toolbar, palette, canvas, inspector, run panel — so each
 * renders from the state's events and calls its operations. The views do not know each other;
 * what one needs from another (the canvas's centre, its trace) is passed in here.
 */
import { api } from '../api.js';
import { h, icon } from '../dom.js';
import { errorBox, problemCount, toast } from '../ui.js';
import { flowActions } from './actions.js';
import { Canvas } from './canvas.js';
import { nodeAdder } from './adding.js';
import { Minimap } from './minimap.js';
import { START } from './model.js';
import { StackView, viewSwitch } from './stack.js';
import { connectDialog } from './wire.js';
import { renderInspector, showDiagnostics } from './inspector.js';
import { flowKeys } from './keys.js';
import { palette } from './palette.js';
import { quickAdd } from './quickadd.js';
import { runPanel } from './runpanel.js';
import { FlowState } from './state.js';
import { flowToolbar } from './toolbar.js';

/**
 * @param {HTMLElement} root @param {number} id
 * @param {{job: number, attempt: number}} [job] a job attempt whose trace to lay over the canvas
 * @returns {Promise<() => void>} cleanup
 */
export async function mountFlow(root, id, job) {
  root.replaceChildren(h('p', { class: 'fl-muted fl-loading', text: 'Loading flow…' }));
  let state;
  try {
    const [r, t] = await Promise.all([api('GET', `/flows/${id}`), api('GET', '/node-types')]);
    state = new FlowState(id, r.body, t.body.node_types);
    await state.refreshTables();
  } catch (e) {
    root.replaceChildren(errorBox(e), h('p', null, h('a', { href: '#/flows', text: '← All endpoints' })));
    return () => {};
  }
  // Read before anything is stashed: this visit's first state replaces what the last one left.
  const kept = state.stashed();
  const screen = mountScreen(root, state);
  screen.actions.offerStash(kept);
  if (job && Number.isInteger(job.job)) await showJobTrace(state, job.job, job.attempt);
  return screen.cleanup;
}

/**
 * Lays a job attempt's trace over the canvas, as a debug run's (the Jobs screen links here).
 * @param {FlowState} state @param {number} jobId @param {number} attempt
 */
async function showJobTrace(state, jobId, attempt) {
  try {
    const res = await api('GET', `/jobs/${jobId}`);
    const attempts = res.body.attempts || res.body.job?.attempts || [];
    const a = attempts.find((/** @type {any} */ x) => x.attempt === attempt) || attempts[attempts.length - 1];
    if (!a?.trace) { toast(`Job #${jobId} has no trace for attempt ${attempt}.`, 'info'); return; }
    state.showTrace({
      trace: a.trace, error: a.error || null, committed: a.outcome === 'completed',
      response: { status: a.outcome === 'completed' ? 200 : a.error?.status || 500, headers: {}, body: a.error ? { error: a.error } : null },
      job: { id: jobId, attempt: a.attempt },
    });
    toast(`The trace of job #${jobId}, attempt ${a.attempt}, is on the canvas.`, 'info');
  } catch (e) {
    toast(`The job's trace could not be loaded: ${e instanceof Error ? e.message : e}`, 'error');
  }
}

/**
 * Builds the screen inside `root` and subscribes the views to `state`.
 * @param {HTMLElement} root @param {FlowState} state
 */
function mountScreen(root, state) {
  const announcer = h('div', { class: 'fl-sr', role: 'status', 'aria-live': 'polite' });
  const announce = (/** @type {string} */ m) => { announcer.textContent = m; };
  /** @type {Canvas} */
  let canvas;
  const actions = flowActions(state, { announce, fit: () => canvas.fit() });
  const undo = () => { if (!state.undo()) announce('Nothing to undo'); };
  const redo = () => { if (!state.redo()) announce('Nothing to redo'); };
  const remove = (/** @type {string[]} */ ids) => {
    // In the stack view, removing one step joins the steps around it.
    const one = ids.filter((i) => i !== START);
    if (stack.shown && one.length === 1) { stack.remove(one[0]); return; }
    const gone = state.remove(ids);
    if (gone.length) announce(`Deleted ${gone.join(', ')}`);
  };
  const adder = nodeAdder(state, () => canvas, announce);
  /** The Connect dialog for a node (W). */
  const connect = (/** @type {string} */ id) => connectDialog(state, id, announce);

  const run = runPanel(state, actions.save);
  const views = viewSwitch(state.id, (view) => {
    canvasEl.hidden = view === 'stack';
    zoomBar.hidden = view === 'stack';
    stack.el.hidden = view !== 'stack';
    screen.dataset.view = view;
    stack.render();
  });
  const toolbar = flowToolbar(state, { ...actions, undo, redo, toggleRun: () => toggleRun(), viewSwitch: views.el });
  /** @param {boolean} [open] */
  const toggleRun = (open) => {
    const show = open ?? run.el.hidden;
    run.el.hidden = !show;
    toolbar.runToggle.replaceChildren('Run', icon(show ? 'chevron-down' : 'chevron', { size: 14 })); toolbar.runToggle.setAttribute('aria-expanded', String(show));
    toolbar.runToggle.setAttribute('aria-expanded', String(show));
    if (show) run.focus();
  };

  const btn = (/** @type {string} */ text, /** @type {string} */ title, /** @type {() => void} */ onclick, cls = 'fl-btn') =>
    h('button', { class: cls, type: 'button', text, title, onclick });
  const canvasEl = h('div', { class: 'fl-canvas-host' });
  /** @type {HTMLElement} */
  let zoomBar;
  const problems = h('button', { class: 'fl-problems', type: 'button', hidden: true, onclick: () => actions.showProblems() });
  const stage = h('div', { class: 'fl-stage' }, canvasEl,
    zoomBar = h('div', { class: 'fl-zoom', role: 'toolbar', 'aria-label': 'View' },
      h('button', { class: 'fl-btn fl-icon', type: 'button', title: 'Zoom out', 'aria-label': 'Zoom out', onclick: () => canvas.zoom(1 / 1.2) }, icon('zoom-out')), h('button', { class: 'fl-btn fl-icon', type: 'button', title: 'Zoom in', 'aria-label': 'Zoom in', onclick: () => canvas.zoom(1.2) }, icon('zoom-in')),
      btn('Fit', 'Fit the flow to the view', () => canvas.fit()),
      btn('Connect…', 'Connect the selected node to another (W)', () => {
        const sel = [...state.selection];
        if (sel.length === 1) connect(sel[0]);
        else toast('Select one node first, then Connect… (or press W)', 'info');
      }), btn('Tidy', 'Arrange the nodes automatically', () => { state.tidy(); canvas.fit(); })),
    problems);
  const inspector = h('aside', { class: 'fl-inspector', 'aria-label': 'Inspector' });
  // In the stack view a palette click adds the step after the selected one.
  const paletteEl = palette(state.typeList, (type) => {
    const from = stack.shown ? adder.stepToFollow() : '';
    const nid = from ? adder.after(from, type) : adder.place(type);
    if (from && nid) stack.focusStep(nid);
  });
  const stack = new StackView(state, {
    add: (from, port, anchor) => {
      const r = anchor.getBoundingClientRect();
      quickAdd(stage, state.typeList, { from, port, client: { x: r.left, y: r.bottom + 4 } }, (type) => {
        const nid = adder.after(from, type, port);
        if (nid) stack.focusStep(nid);
      });
    },
    connect,
    announce,
  });
  stage.append(stack.el);
  const screen = h('div', { class: 'fl-screen' }, toolbar.el, h('div', { class: 'fl-main' }, paletteEl, stage, inspector), run.el, announcer);
  root.replaceChildren(screen);

  canvas = new Canvas(canvasEl, {
    types: state.types,
    doc: () => state.doc,
    edit: (_label, fn) => state.edit(fn),
    snapshot: () => state.snapshot(),
    moved: () => state.moved(),
    select: (ids) => state.select(ids),
    say: (m, loud) => { announce(m); if (loud) toast(m, 'error'); },
    addNode: (type, x, y) => { adder.place(type, { at: { x, y } }); },
    quickAdd: (from, port, at, client) => quickAdd(stage, state.typeList, { from, port, client }, (type) => {
      const nid = adder.place(type, { at: { x: at.x, y: at.y - 16 } });
      if (!nid) return;
      // One undo step for add + connect would be nicer; two steps keep each reversible.
      state.connect(from, port, nid);
      state.select([nid]);
    }),
  });
  // Focusing a node with the keyboard selects it.
  canvasEl.addEventListener('focusin', (e) => {
    const n = /** @type {HTMLElement} */ (e.target).closest?.('.fl-node');
    if (n instanceof HTMLElement && n.dataset.id && !state.selection.has(n.dataset.id)) state.select([n.dataset.id]);
  });

  new Minimap(canvas);

  const inspect = subscribe(state, { screen, canvas, stack, inspector, problems, remove });
  const cleanup = flowKeys(screen, state, canvas, {
    save: actions.save, run: () => { toggleRun(true); run.run(); }, undo, redo, remove, announce,
    connect, placeGroup: (size) => adder.spot(size),
  });

  canvas.render();
  views.choose(views.initial());
  requestAnimationFrame(() => canvas.fit());
  inspect();
  state.touched();
  state.validate();
  // For tests and the curious: the live editor state.
  /** @type {any} */ (window).sluiceFlow = {
    doc: () => state.doc, state, canvas, save: actions.save, run: run.run, publish: actions.publish,
    diagnostics: () => state.diagnostics, lastRun: () => state.lastRun,
  };
  return { actions, cleanup };
}

/**
 * Redraws the views from the state's events; returns the inspector's redraw.
 * @param {FlowState} state
 * @param {{screen: HTMLElement, canvas: Canvas, stack: StackView, inspector: HTMLElement, problems: HTMLElement, remove: (ids: string[]) => void}} v
 */
function subscribe(state, { screen, canvas, stack, inspector, problems, remove }) {
  const inspect = () => {
    renderInspector(inspector, {
      doc: () => state.doc, types: state.types,
      change: (fn, opts) => state.change(fn, opts),
      snapshot: () => state.snapshot(),
      rename: (from, to) => state.rename(from, to),
      remove,
      traceOf: (n) => canvas.trace?.get(n),
      tables: () => state.tables, refreshTables: () => state.refreshTables(),
    }, state.selectedNodes());
    showDiagnostics(inspector, state.diagnostics);
  };

  state.on('doc', () => { canvas.render(); stack.render(); inspect(); });
  state.on('fields', (/** @type {{canvas: boolean}} */ d) => {
    if (d.canvas) canvas.render();
    else { canvas.refreshSummaries(); canvas.paintMarks(); }
    stack.render();
  });
  state.on('selection', () => { canvas.showSelection(state.selection); stack.paintSelection(); canvas.onView(); inspect(); });
  state.on('dirty', () => { screen.dataset.dirty = String(state.dirty()); });
  state.on('problem', (/** @type {string} */ m) => toast(m, 'error'));
  state.on('diagnostics', () => {
    const diags = state.diagnostics;
    canvas.setDiagnostics(diags);
    showDiagnostics(inspector, diags);
    stack.paintMarks();
    problems.hidden = !diags.length;
    problems.replaceChildren(icon('warning', { size: 16 }), ` ${problemCount(diags)}`);
    problems.setAttribute('aria-label', `${problemCount(diags)}: show the list`);
    screen.dataset.problems = String(diags.length);
  });
  state.on('run', () => {
    const r = state.lastRun;
    canvas.setTrace(r ? r.trace : null, r ? r.error : null);
    stack.paintMarks();
    if (r) {
      canvas.ensureVisible(r.trace.map((/** @type {any} */ t) => t.node));
      screen.dataset.lastStatus = String(r.response?.status);
    }
    inspect();
  });

  return inspect;
}
