// @ts-check
// The flow screen: toolbar (save, publish, run, history, import/export), palette, canvas,
// inspector and run panel around one working copy of the document. Every change goes through
// `change` or `edit` (undo snapshot, dirty state, debounced server validation).

import { api, ApiError } from '../api.js';
import { Canvas, NODE_W, fmtUs } from './canvas.js';
import { renderInspector, showDiagnostics } from './inspector.js';
import { layered } from './layout.js';
import { History, START, clone, copyNodes, freshId, pasteNodes, positions, removeNodes, renameNode, logicOf } from './model.js';
import { showHistory } from './history.js';
import { exportFlow, fileButton, importDialog } from './io.js';
import { dialog, el, errorView, toast, diagList } from './ui.js';

/** Copied nodes, kept across flows while the editor is open. */
let clipboard = null;

/** Where unsaved edits of a flow survive leaving its screen (this tab only). */
const stashKey = (id) => `sluice.flow.unsaved.${id}`;

const GROUPS = [
  ['Data', (t) => t.startsWith('db.')],
  ['Logic', (t) => ['if', 'switch', 'for_each', 'collect', 'set', 'script', 'validate', 'call'].includes(t)],
  ['Outside', (t) => t.startsWith('http.') || t === 'template' || t.startsWith('auth.')],
  ['End', (t) => t === 'respond' || t === 'fail'],
];

/** @param {HTMLElement} root @param {number} id @returns {Promise<() => void>} cleanup */
export async function mountFlow(root, id) {
  root.replaceChildren(el('p', { class: 'fl-muted fl-loading', text: 'Loading flow…' }));
  let record, typeList;
  try {
    const [r, t] = await Promise.all([api('GET', `/flows/${id}`), api('GET', '/node-types')]);
    record = r.body;
    typeList = t.body.node_types;
  } catch (e) {
    root.replaceChildren(errorView(e), el('p', {}, el('a', { href: '#/flows', text: '← All endpoints' })));
    return () => {};
  }
  let kept = null;
  try { kept = JSON.parse(sessionStorage.getItem(stashKey(id)) || 'null'); } catch { kept = null; }
  /** @type {Map<string, any>} */
  const types = new Map(typeList.map((t) => [t.type, t]));
  let doc = clone(record.document);
  let rev = record.rev;
  let savedText = '';
  let diags = [];
  let lastRun = null;
  const history = new History();

  // ---- layout of the screen -----------------------------------------------------------------
  const nameEl = el('h1', { class: 'fl-title', text: doc.name });
  const routeEl = el('span', { class: 'fl-route' });
  const stateEl = el('span', { class: 'fl-state', 'aria-live': 'polite' });
  const btn = (text, title, onclick, cls = 'fl-btn', id = undefined) => el('button', { class: cls, type: 'button', text, title, onclick, id });
  const saveBtn = btn('Save', 'Save the draft (Ctrl+S)', () => save(), 'fl-btn', 'fl-save');
  const publishBtn = btn('Publish', 'Save and publish: serve this draft', () => publish(), 'fl-btn fl-primary', 'fl-publish');
  const unpublishBtn = btn('Unpublish', 'Stop serving this flow', () => unpublish(), 'fl-btn', 'fl-unpublish');
  const runToggle = btn('Run ▸', 'Open the run panel', () => toggleRun(), 'fl-btn', 'fl-run-toggle');
  const toolbar = el('header', { class: 'fl-toolbar' },
    el('a', { class: 'fl-back', href: '#/flows', 'aria-label': 'All endpoints', text: '←' }),
    el('div', { class: 'fl-titles' }, nameEl, routeEl), stateEl,
    el('div', { class: 'fl-tools', role: 'toolbar', 'aria-label': 'Flow actions' },
      btn('↶', 'Undo (Ctrl+Z)', () => undo(), 'fl-btn fl-icon'), btn('↷', 'Redo (Ctrl+Shift+Z)', () => redo(), 'fl-btn fl-icon'),
      saveBtn, runToggle, btn('Versions', 'Published versions, diff and rollback', () => versions(), 'fl-btn', 'fl-versions'),
      btn('Export', 'Download the canonical JSON file', () => exportFlow(id, record.name).catch((e) => toast(e.message, 'error')), 'fl-btn', 'fl-export'),
      fileButton('Import…', 'Replace this flow (or create one) from a JSON file', (text) => importInto(text)),
      unpublishBtn, publishBtn));

  const search = /** @type {HTMLInputElement} */ (el('input', { class: 'fl-input', type: 'search', placeholder: 'Filter nodes', 'aria-label': 'Filter node types' }));
  const paletteList = el('div', { class: 'fl-palette-list' });
  const palette = el('aside', { class: 'fl-palette', 'aria-label': 'Node types' }, el('h2', { class: 'fl-side-title', text: 'Nodes' }), search, paletteList,
    el('p', { class: 'fl-hint', text: 'Drag onto the canvas, or press Enter to add. Drag from a port (●) to a node to wire it; click a wire to disconnect. Shift-drag selects an area.' }));
  const stage = el('div', { class: 'fl-stage' });
  const canvasEl = el('div', { class: 'fl-canvas-host' });
  const problems = el('button', { class: 'fl-problems', type: 'button', hidden: true, onclick: () => showProblems() });
  const zoomBar = el('div', { class: 'fl-zoom', role: 'toolbar', 'aria-label': 'View' },
    btn('−', 'Zoom out', () => canvas.zoom(1 / 1.2), 'fl-btn fl-icon'), btn('+', 'Zoom in', () => canvas.zoom(1.2), 'fl-btn fl-icon'),
    btn('Fit', 'Fit the flow to the view', () => canvas.fit()), btn('Tidy', 'Arrange the nodes automatically', () => tidy()));
  stage.append(canvasEl, zoomBar, problems);
  const inspector = el('aside', { class: 'fl-inspector', 'aria-label': 'Inspector' });
  const runPanel = el('section', { class: 'fl-run', hidden: true, 'aria-label': 'Run the draft' });
  const main = el('div', { class: 'fl-main' }, palette, stage, inspector);
  const screen = el('div', { class: 'fl-screen' }, toolbar, main, runPanel);
  root.replaceChildren(screen);

  // ---- canvas -------------------------------------------------------------------------------
  const canvas = new Canvas(canvasEl, {
    types,
    doc: () => doc,
    edit: (label, fn) => edit(fn),
    snapshot: () => history.push(doc),
    moved: () => refreshState(),
    select: () => inspect(),
    say: (m, loud) => { announce(m); if (loud) toast(m, 'error'); },
    addNode: (type, x, y) => addNode(type, x, y),
    quickAdd: (from, port, at, client) => quickAdd(from, port, at, client),
  });
  const announcer = el('div', { class: 'fl-sr', role: 'status', 'aria-live': 'polite' });
  screen.append(announcer);
  const announce = (m) => { announcer.textContent = m; };

  // ---- editing ------------------------------------------------------------------------------
  /** A structural change: undo snapshot, apply, redraw everything. @param {(d: any) => void} fn */
  function edit(fn) {
    history.push(doc);
    fn(doc);
    canvas.render();
    inspect();
    changed();
  }

  /** A field change from the inspector (snapshot taken on focus). */
  function change(fn, opts = {}) {
    fn(doc);
    if (opts.canvas) canvas.render();
    else canvas.paintMarks();
    nameEl.textContent = doc.name || '(unnamed)';
    changed();
  }

  let vTimer = 0;
  function changed() {
    refreshState();
    clearTimeout(vTimer);
    vTimer = window.setTimeout(validate, 400);
  }

  function undo() {
    const d = history.back(doc);
    if (!d) return announce('Nothing to undo');
    doc = d; canvas.render(); inspect(); changed();
  }
  function redo() {
    const d = history.forward(doc);
    if (!d) return announce('Nothing to redo');
    doc = d; canvas.render(); inspect(); changed();
  }

  function addNode(type, x, y) {
    const t = types.get(type);
    if (!t) return;
    const nid = freshId(doc, type.replace(/^db\./, '').replace('.', '_'));
    const node = { type, ...starter(type) };
    if (t.binds) node.as = nid;
    edit((d) => {
      d.nodes[nid] = node;
      positions(d)[nid] = { x: Math.round(x), y: Math.round(y) };
      if (!d.entry) d.entry = nid;
    });
    canvas.select([nid]);
    announce(`Added ${type} node ${nid}`);
  }

  /** A wire dropped on empty canvas: pick a node type to create there, wired from that port. */
  function quickAdd(from, port, at, client) {
    const menu = el('div', { class: 'fl-quick', role: 'dialog', 'aria-label': `Add a node after ${from}.${port}` });
    const filter = /** @type {HTMLInputElement} */ (el('input', { class: 'fl-input', type: 'search', placeholder: `Add after ${port}…`, 'aria-label': 'Node type' }));
    const list = el('div', { class: 'fl-quick-list', role: 'listbox' });
    const close = () => { menu.remove(); document.removeEventListener('pointerdown', outside, true); };
    const outside = (e) => { if (!menu.contains(/** @type {Node} */ (e.target))) close(); };
    const choose = (type) => {
      close();
      addNode(type, at.x, at.y - 16);
      const nid = [...canvas.selection][0];
      if (!nid) return;
      // One undo step for add + connect would be nicer; two steps keep each reversible.
      edit((d) => {
        if (from === START) d[port] = nid;
        else d.nodes[from].next = { ...(d.nodes[from].next || {}), [port]: nid };
      });
      canvas.select([nid]);
    };
    const draw = () => {
      const q = filter.value.trim().toLowerCase();
      list.replaceChildren(...typeList.filter((t) => !q || t.type.includes(q) || String(t.title || '').toLowerCase().includes(q)).slice(0, 12)
        .map((t) => el('button', { class: 'fl-quick-item', type: 'button', role: 'option', onclick: () => choose(t.type) },
          el('span', { class: 'fl-type', text: t.type }), ' ', el('span', { class: 'fl-muted', text: t.title || '' }))));
    };
    filter.addEventListener('input', draw);
    filter.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { e.stopPropagation(); close(); }
      if (e.key === 'Enter') { const first = list.querySelector('button'); if (first) /** @type {HTMLElement} */ (first).click(); }
    });
    draw();
    menu.append(filter, list);
    const host = stage.getBoundingClientRect();
    menu.style.left = `${Math.min(client.x - host.left, host.width - 250)}px`;
    menu.style.top = `${Math.min(client.y - host.top, host.height - 260)}px`;
    stage.append(menu);
    filter.focus();
    setTimeout(() => document.addEventListener('pointerdown', outside, true));
  }

  function remove(ids) {
    const list = ids.filter((i) => i !== START);
    if (!list.length) return;
    edit((d) => removeNodes(d, list));
    canvas.select([]);
    announce(`Deleted ${list.join(', ')}`);
  }

  function tidy() {
    edit((d) => {
      const laid = layered(d, (n) => canvas.height(n));
      Object.assign(positions(d), laid);
    });
    canvas.fit();
  }

  // ---- inspector ----------------------------------------------------------------------------
  function inspect() {
    const ids = [...canvas.selection].filter((i) => i !== START);
    renderInspector(inspector, {
      doc: () => doc, types,
      change,
      snapshot: () => history.push(doc),
      rename: (from, to) => {
        if (doc.nodes[to]) return false;
        edit((d) => renameNode(d, from, to));
        canvas.select([to]);
        return true;
      },
      remove,
      traceOf: (n) => canvas.trace?.get(n),
    }, ids);
    showDiagnostics(inspector, diags);
  }

  // ---- server checks, state -----------------------------------------------------------------
  let vSeq = 0;
  async function validate() {
    const mine = ++vSeq;
    try {
      const r = (await api('POST', '/flows/validate', { body: { document: doc } })).body;
      if (mine !== vSeq) return;
      setDiagnostics(r.diagnostics);
    } catch (e) {
      if (mine === vSeq) toast(`Could not check the flow: ${/** @type {any} */ (e).message}`, 'error');
    }
  }

  function setDiagnostics(list) {
    diags = list || [];
    canvas.setDiagnostics(diags);
    showDiagnostics(inspector, diags);
    problems.hidden = !diags.length;
    problems.textContent = `⚠ ${diags.length} problem${diags.length === 1 ? '' : 's'}`;
    problems.setAttribute('aria-label', `${diags.length} problems; show them`);
    screen.dataset.problems = String(diags.length);
  }

  function showProblems() {
    dialog('Problems', (close) => [diagList(diags), el('p', { class: 'fl-hint', text: 'Select a node marked ⚠ to see its problems next to the field.' }),
      el('div', { class: 'fl-dialog-actions' }, ...[...new Set(diags.map((d) => d.node).filter(Boolean))].map((n) =>
        el('button', { class: 'fl-btn', type: 'button', text: `Go to ${n}`, onclick: () => { close(null); canvas.select([n]); } })))]);
  }

  function dirty() { return JSON.stringify(doc) !== savedText; }

  /** Keeps unsaved edits in sessionStorage so leaving the screen loses nothing. */
  function stash() {
    try {
      if (dirty()) sessionStorage.setItem(stashKey(id), JSON.stringify({ rev, doc }));
      else sessionStorage.removeItem(stashKey(id));
    } catch { /* storage full or disabled: nothing to keep */ }
  }

  /** Offers the edits a previous visit left unsaved (read before this visit stashes). */
  async function offerStash(kept) {
    if (!kept?.doc || JSON.stringify(kept.doc) === savedText) return;
    const choice = await dialog('Unsaved edits', (close) => [
      el('p', { text: `You left ${kept.doc.name || 'this flow'} with edits that were not saved. They are kept in this browser tab.` }),
      el('div', { class: 'fl-dialog-actions' },
        el('button', { class: 'fl-btn', type: 'button', text: 'Discard them', onclick: () => close('discard') }),
        el('button', { class: 'fl-btn fl-primary', type: 'button', text: 'Restore my edits', onclick: () => close('restore') })),
    ]);
    if (choice === 'restore') {
      history.push(doc);
      doc = kept.doc;
      // Saving goes through If-Match with the rev those edits started from, so a change made
      // elsewhere meanwhile shows the conflict dialog instead of being overwritten.
      rev = kept.rev;
      canvas.render(); inspect(); changed();
    } else if (choice === 'discard') {
      sessionStorage.removeItem(stashKey(id));
    }
  }
  function refreshState() {
    const d = dirty();
    const pub = record.published_version;
    routeEl.textContent = doc.endpoint ? `${doc.endpoint.method} /api${doc.endpoint.path}` : 'function';
    stateEl.replaceChildren(
      el('span', { class: pub ? 'fl-pill fl-pill-live' : 'fl-pill', text: pub ? `published v${pub}` : 'draft only' }),
      d ? el('span', { class: 'fl-pill fl-pill-dirty', text: 'unsaved changes' }) : '');
    screen.dataset.dirty = String(d);
    stash();
    saveBtn.disabled = !d;
    unpublishBtn.hidden = !pub;
  }

  /** Saves the draft; true when the server has it. */
  async function save() {
    if (!dirty()) return true;
    const sending = clone(doc);
    try {
      const r = await api('PUT', `/flows/${id}`, { body: sending, ifMatch: rev });
      record = r.body;
      rev = record.rev;
      savedText = JSON.stringify(sending);
      refreshState();
      announce('Saved');
      toast('Saved', 'ok');
      return true;
    } catch (e) {
      if (e instanceof ApiError && (e.code === 'flow.stale_rev' || e.status === 412)) return conflict();
      if (e instanceof ApiError && e.code === 'flow.invalid') {
        setDiagnostics(e.details);
        toast(`Not saved: ${e.message}. Fix the marked nodes.`, 'error');
        return false;
      }
      toast(`Not saved: ${/** @type {any} */ (e).message}`, 'error');
      return false;
    }
  }

  /** Someone else saved meanwhile: keep local edits, offer to overwrite or load theirs. */
  async function conflict() {
    let theirs;
    try { theirs = (await api('GET', `/flows/${id}`)).body; } catch (e) { toast(String(/** @type {any} */ (e).message), 'error'); return false; }
    const choice = await dialog('This flow was changed elsewhere', (close) => [
      el('p', { text: `Someone saved a newer version of ${theirs.name} (rev ${theirs.rev.slice(0, 10)}) after you opened it. Your edits are still here; nothing was lost.` }),
      el('p', { class: 'fl-hint', text: logicOf(theirs.document) === logicOf(doc) ? 'Their logic is the same as yours.' : 'Their logic differs from yours. Use Versions after saving to compare.' }),
      el('div', { class: 'fl-dialog-actions' },
        el('button', { class: 'fl-btn', type: 'button', text: 'Keep editing', onclick: () => close('keep') }),
        el('button', { class: 'fl-btn', type: 'button', text: 'Download mine', onclick: () => downloadMine() }),
        el('button', { class: 'fl-btn', type: 'button', text: 'Load theirs (discard mine)', onclick: () => close('theirs') }),
        el('button', { class: 'fl-btn fl-primary', type: 'button', text: 'Overwrite with mine', onclick: () => close('mine') })),
    ]);
    if (choice === 'mine') { rev = theirs.rev; return save(); }
    if (choice === 'theirs') {
      history.push(doc);
      record = theirs; rev = theirs.rev; doc = clone(theirs.document);
      const p = positions(doc);
      const laid = layered(doc, (n) => canvas.height(n));
      for (const n of Object.keys(laid)) if (!p[n]) p[n] = laid[n];
      savedText = JSON.stringify(doc);
      canvas.render(); inspect(); changed();
      return true;
    }
    return false;
  }

  function downloadMine() {
    const blob = new Blob([JSON.stringify(doc, null, 2) + '\n'], { type: 'application/json' });
    const a = el('a', { href: URL.createObjectURL(blob), download: `${doc.name || 'flow'}.mine.flow.json` });
    document.body.append(a); a.click(); a.remove();
  }

  async function publish() {
    if (!(await save())) return;
    try {
      const r = (await api('POST', `/flows/${id}/publish`, { ifMatch: rev })).body;
      record.published_version = r.version;
      refreshState();
      toast(r.url ? `Published v${r.version}: ${r.method} ${r.url}` : `Published function v${r.version}`, 'ok');
    } catch (e) {
      if (e instanceof ApiError && e.code === 'flow.invalid') setDiagnostics(e.details);
      dialog('Not published', () => [errorView(e)]);
    }
  }

  async function unpublish() {
    try {
      await api('DELETE', `/flows/${id}/publish`);
      record.published_version = null;
      refreshState();
      toast('Unpublished: the endpoint is no longer served.', 'ok');
    } catch (e) { toast(/** @type {any} */ (e).message, 'error'); }
  }

  async function versions() {
    await showHistory(id, () => doc, async (version, andPublish) => {
      if (dirty() && !confirm('Rolling back replaces your unsaved edits. Continue?')) return;
      try {
        const r = (await api('POST', `/flows/${id}/rollback`, { body: { version, publish: andPublish }, ifMatch: rev })).body;
        history.push(doc);
        record = r; rev = r.rev; doc = clone(r.document);
        const p = positions(doc);
        const laid = layered(doc, (n) => canvas.height(n));
        for (const n of Object.keys(laid)) if (!p[n]) p[n] = laid[n];
        savedText = JSON.stringify(doc);
        canvas.render(); inspect(); changed();
        toast(andPublish ? `Rolled back to v${version} and published it as v${r.published_version}` : `The draft is now v${version}. Publish to serve it.`, 'ok');
      } catch (e) {
        if (e instanceof ApiError && e.code === 'flow.stale_rev') toast('The flow changed elsewhere; reload it before rolling back.', 'error');
        else dialog('Rollback failed', () => [errorView(e)]);
      }
    });
  }

  /** @param {string} text */
  async function importInto(text) {
    let flows = [];
    try { flows = (await api('GET', '/flows')).body.flows; } catch { /* the dialog reports errors itself */ }
    const target = await importDialog(text, flows, id);
    if (target === id) {
      const r = (await api('GET', `/flows/${id}`)).body;
      record = r; rev = r.rev; history.push(doc); doc = clone(r.document);
      const p = positions(doc);
      const laid = layered(doc, (n) => canvas.height(n));
      for (const n of Object.keys(laid)) if (!p[n]) p[n] = laid[n];
      savedText = JSON.stringify(doc);
      canvas.render(); canvas.fit(); inspect(); changed();
      toast('Imported into this flow', 'ok');
    } else if (typeof target === 'number') {
      location.hash = `#/flows/${target}`;
    }
  }

  // ---- run panel ----------------------------------------------------------------------------
  const jsonBox = (label, idName, value) => {
    const ta = /** @type {HTMLTextAreaElement} */ (el('textarea', { class: 'fl-input fl-code', id: idName, rows: 2, spellcheck: false }));
    ta.value = value;
    return [el('label', { for: idName, text: label }), ta];
  };
  const [pl, params] = jsonBox('Path params (JSON)', 'fl-run-params', '{}');
  const [ql, query] = jsonBox('Query (JSON)', 'fl-run-query', '{}');
  const [bl, body] = jsonBox('Body (JSON)', 'fl-run-body', '');
  const token = /** @type {HTMLInputElement} */ (el('input', { class: 'fl-input', id: 'fl-run-token', placeholder: 'end-user bearer token (optional)', spellcheck: false }));
  const commit = /** @type {HTMLInputElement} */ (el('input', { type: 'checkbox', id: 'fl-run-commit' }));
  const result = el('div', { class: 'fl-run-result', 'aria-live': 'polite' });
  const runBtn = el('button', { class: 'fl-btn fl-primary', type: 'button', id: 'fl-run', text: 'Run draft', onclick: () => run() });
  runPanel.append(
    el('div', { class: 'fl-run-inputs' },
      el('div', { class: 'fl-run-field' }, pl, params),
      el('div', { class: 'fl-run-field' }, ql, query),
      el('div', { class: 'fl-run-field fl-span2' }, bl, body),
      el('div', { class: 'fl-run-field' }, el('label', { for: 'fl-run-token', text: 'Token' }), token),
      el('div', { class: 'fl-run-field fl-run-actions' },
        el('label', { class: 'fl-check' }, commit, ' Keep writes'),
        el('div', { class: 'fl-run-buttons' }, runBtn,
          el('button', { class: 'fl-btn', type: 'button', text: 'Clear trace', onclick: () => { lastRun = null; canvas.setTrace(null, null); result.replaceChildren(); inspect(); } })))),
    result);
  if (doc.endpoint?.method && !['GET', 'DELETE'].includes(doc.endpoint.method)) body.value = '{}';

  function toggleRun(open) {
    const show = open ?? runPanel.hidden;
    runPanel.hidden = !show;
    runToggle.textContent = show ? 'Run ▾' : 'Run ▸';
    runToggle.setAttribute('aria-expanded', String(show));
    if (show) (/** @type {HTMLElement} */ (params)).focus();
  }

  async function run() {
    const parse = (ta, name, empty) => {
      const t = ta.value.trim();
      if (!t) return empty;
      try { return JSON.parse(t); } catch (e) { throw new Error(`${name} is not JSON: ${/** @type {Error} */ (e).message}`); }
    };
    let req;
    try {
      req = { params: parse(params, 'Path params', {}), query: parse(query, 'Query', {}), body: parse(body, 'Body', null), headers: {}, commit: commit.checked };
    } catch (e) { result.replaceChildren(errorView(e)); return; }
    if (token.value.trim()) req.headers.authorization = `Bearer ${token.value.trim()}`;
    if (dirty() && !(await save())) { result.replaceChildren(errorView({ message: 'The draft could not be saved, so it was not run.' })); return; }
    result.replaceChildren(el('p', { class: 'fl-muted', text: 'Running…' }));
    try {
      const r = (await api('POST', `/flows/${id}/run`, { body: req })).body;
      lastRun = r;
      canvas.setTrace(r.trace, r.error);
      canvas.ensureVisible(r.trace.map((t) => t.node));
      showRun(r);
      inspect();
      screen.dataset.lastStatus = String(r.response?.status);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'flow.invalid') setDiagnostics(e.details);
      result.replaceChildren(errorView(e));
    }
  }

  function showRun(r) {
    const st = r.response?.status;
    const cls = st >= 500 ? 'fl-pill fl-pill-bad' : st >= 400 ? 'fl-pill fl-pill-warn' : 'fl-pill fl-pill-live';
    const headers = Object.entries(r.response?.headers || {});
    result.replaceChildren(
      el('div', { class: 'fl-run-head' }, el('span', { class: cls, text: `HTTP ${st}` }),
        el('span', { class: 'fl-muted', text: ` ${fmtUs(r.duration_us)} · ${r.trace.length} step${r.trace.length === 1 ? '' : 's'} · ${r.committed ? 'writes committed' : 'writes rolled back'}` })),
      r.error ? el('div', { class: 'fl-error', role: 'alert' }, el('strong', { text: `${r.error.code}: ${r.error.message}` }), r.error.node ? ` (node ${r.error.node})` : '',
        Array.isArray(r.error.details) && r.error.details.length ? diagList(r.error.details) : '') : '',
      headers.length ? el('table', { class: 'fl-table fl-headers' }, ...headers.map(([k, v]) => el('tr', {}, el('th', { text: k }), el('td', { text: String(v) })))) : '',
      el('pre', { class: 'fl-pre fl-run-body', text: typeof r.response?.body === 'string' ? r.response.body : JSON.stringify(r.response?.body, null, 2) }),
      el('p', { class: 'fl-hint', text: 'The trace is on the canvas: highlighted wires fired; hover or select a node for its time and output.' }));
  }

  // ---- palette ------------------------------------------------------------------------------
  function buildPalette() {
    const q = search.value.trim().toLowerCase();
    paletteList.replaceChildren();
    const used = new Set();
    for (const [group, test] of [...GROUPS, ['Other', () => true]]) {
      const items = typeList.filter((t) => !used.has(t.type) && test(t.type));
      items.forEach((t) => used.add(t.type));
      const shown = items.filter((t) => !q || t.type.includes(q) || String(t.title || '').toLowerCase().includes(q));
      if (!shown.length) continue;
      paletteList.append(el('h3', { class: 'fl-palette-group', text: group }));
      for (const t of shown) {
        const item = el('button', { class: 'fl-palette-item', type: 'button', draggable: 'true', 'data-type': t.type, title: t.title || t.type,
          'aria-label': `Add ${t.type} node: ${t.title || ''}` }, el('span', { class: 'fl-type', text: t.type }), el('span', { class: 'fl-palette-title', text: t.title || '' }));
        item.addEventListener('dragstart', (e) => { e.dataTransfer?.setData('application/x-sluice-node', t.type); if (e.dataTransfer) e.dataTransfer.effectAllowed = 'copy'; });
        item.addEventListener('click', () => { const c = canvas.center(); addNode(t.type, c.x - NODE_W / 2 + (Math.random() * 40 - 20), c.y - 30); });
        paletteList.append(item);
      }
    }
  }
  search.addEventListener('input', buildPalette);

  // ---- keyboard -----------------------------------------------------------------------------
  const onKey = (/** @type {KeyboardEvent} */ e) => {
    if (!screen.isConnected) return cleanup();
    if (document.querySelector('dialog[open]')) return;
    const mod = e.ctrlKey || e.metaKey;
    const k = e.key.toLowerCase();
    const typing = /** @type {HTMLElement} */ (e.target).closest?.('input, textarea, select, [contenteditable]');
    if (mod && k === 's') { e.preventDefault(); save(); return; }
    if (mod && k === 'enter') { e.preventDefault(); toggleRun(true); run(); return; }
    if (typing) { if (e.key === 'Escape') /** @type {HTMLElement} */ (typing).blur(); return; }
    if (mod && k === 'z' && !e.shiftKey) { e.preventDefault(); undo(); }
    else if (mod && ((k === 'z' && e.shiftKey) || k === 'y')) { e.preventDefault(); redo(); }
    else if (mod && k === 'c') {
      const ids = [...canvas.selection].filter((i) => i !== START);
      if (!ids.length) return;
      clipboard = copyNodes(doc, ids);
      navigator.clipboard?.writeText(JSON.stringify(clipboard)).catch(() => {});
      announce(`Copied ${ids.length} node${ids.length === 1 ? '' : 's'}`);
    } else if (mod && k === 'v') {
      if (!clipboard) return;
      e.preventDefault();
      let ids = [];
      edit((d) => { ids = pasteNodes(d, clipboard, 40, 40); });
      canvas.select(ids);
      clipboard = { ...clipboard, at: Object.fromEntries(Object.entries(clipboard.at).map(([n, p]) => [n, { x: p.x + 40, y: p.y + 40 }])) };
      announce(`Pasted ${ids.join(', ')}`);
    } else if (mod && k === 'a') {
      e.preventDefault();
      canvas.select(Object.keys(doc.nodes));
    } else if (e.key === 'Delete' || e.key === 'Backspace') {
      if (canvas.deleteWire()) return;
      remove([...canvas.selection]);
    } else if (e.key === 'Escape') {
      canvas.select([]);
    } else if (e.key.startsWith('Arrow') && canvas.selection.size && !mod) {
      e.preventDefault();
      const step = e.shiftKey ? 50 : 10;
      const dx = e.key === 'ArrowLeft' ? -step : e.key === 'ArrowRight' ? step : 0;
      const dy = e.key === 'ArrowUp' ? -step : e.key === 'ArrowDown' ? step : 0;
      history.push(doc);
      canvas.nudge(dx, dy);
      refreshState();
    } else if ((e.key === '+' || e.key === '=') && !mod) canvas.zoom(1.2);
    else if (e.key === '-' && !mod) canvas.zoom(1 / 1.2);
  };
  const onUnload = (/** @type {BeforeUnloadEvent} */ e) => { if (screen.isConnected && dirty()) { e.preventDefault(); e.returnValue = ''; } };
  document.addEventListener('keydown', onKey);
  window.addEventListener('beforeunload', onUnload);
  // Focusing a node with the keyboard selects it.
  canvasEl.addEventListener('focusin', (e) => {
    const n = /** @type {HTMLElement} */ (e.target).closest?.('.fl-node');
    if (n instanceof HTMLElement && !canvas.selection.has(n.dataset.id || '') && n.dataset.id) canvas.select([n.dataset.id]);
  });

  function cleanup() {
    document.removeEventListener('keydown', onKey);
    window.removeEventListener('beforeunload', onUnload);
  }
  // Nodes without positions get a layered layout.
  const pos = positions(doc);
  const missing = [START, ...Object.keys(doc.nodes)].filter((n) => !pos[n]);
  if (missing.length) {
    const laid = layered(doc, (n) => canvas.height(n));
    const all = missing.length > Object.keys(doc.nodes).length;
    for (const n of all ? Object.keys(laid) : missing) pos[n] = laid[n];
  }
  savedText = JSON.stringify(doc);
  canvas.render();
  requestAnimationFrame(() => canvas.fit());
  buildPalette();
  inspect();
  refreshState();
  validate();

  offerStash(kept);
  // For tests and the curious: the live editor state.
  /** @type {any} */ (window).sluiceFlow = { doc: () => doc, canvas, save, run, publish, diagnostics: () => diags, lastRun: () => lastRun };
  return cleanup;
}

/** Config a new node of `type` starts with, so it is close to valid. @param {string} type */
function starter(type) {
  switch (type) {
    case 'script': return { code: 'let result = #{};\nresult' };
    case 'respond': return { status: 200, body: { ok: true } };
    case 'fail': return { status: 400, code: 'app.refused', message: 'refused' };
    case 'if': return { condition: { $rhai: 'true' } };
    case 'set': return { value: { $rhai: '#{}' } };
    case 'switch': return { value: { $rhai: '""' }, cases: { a: 'a' } };
    case 'collect': return { value: { $rhai: 'item' } };
    default: return {};
  }
}
