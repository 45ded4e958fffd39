// @ts-check
/**
 * The state of the flow screen: the draft being edited, what the server last saved (record,
 * rev), the selection, the undo history, the server's diagnostics and the last debug run, with
 * small named operations and change notification. Views (toolbar, palette, canvas, inspector,
 * run panel) render from it and call its operations; it never touches the DOM, and it talks to
 * the server only through `api.js`. Decisions that need the builder (a save conflict, restoring
 * stashed edits) are returned to the caller, not asked here.
 *
 * Events (`on(name, fn)`):
 * - `doc`: the document changed in structure (nodes, wires) or was replaced; redraw everything.
 * - `fields`: a field changed in place (`{canvas}`: whether the node boxes show it).
 * - `dirty`: the saved/unsaved state or the published version may have changed.
 * - `selection`, `diagnostics`, `run`: what their names say.
 * - `problem`: a message for the builder (the server could not be asked).
 */
import { api, ApiError } from '../api.js';
import { layered, nodeHeight } from './layout.js';
import { setScope } from '../code/complete.js';
import { History, START, clone, copyNodes, freshId, pasteNodes, positions, removeNodes, renameNode } from './model.js';

/** Where unsaved edits of a flow survive leaving its screen (this tab only). */
const stashKey = (/** @type {number} */ id) => `sluice.flow.unsaved.${id}`;

/** How long after the last edit the server checks the draft. */
const VALIDATE_DELAY_MS = 400;

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

export class FlowState {
  /**
   * @param {number} id the flow's id
   * @param {any} record the flow as `GET /flows/{id}` returns it
   * @param {any[]} typeList the node types as `GET /node-types` returns them
   */
  constructor(id, record, typeList) {
    this.id = id;
    this.record = record;
    this.rev = record.rev;
    this.typeList = typeList;
    /** @type {Map<string, any>} */
    this.types = new Map(typeList.map((t) => [t.type, t]));
    this.doc = clone(record.document);
    this.layoutMissing(true);
    /** The JSON of the document as the server has it; the draft is dirty when it differs. */
    this.savedText = JSON.stringify(this.doc);
    this.history = new History();
    /** @type {Set<string>} */
    this.selection = new Set();
    /** @type {any[]} */
    this.diagnostics = [];
    /** @type {any} */
    this.lastRun = null;
    /** @type {Map<string, Set<(detail?: any) => void>>} */
    this.listeners = new Map();
    this.validateTimer = 0;
    this.validateSeq = 0;
    /** The managed tables (`GET /tables`), for the inspector's table and column forms. @type {any[]} */
    this.tables = [];
    // The names in scope come with each validate answer; none are known for this flow yet.
    setScope({});
  }

  /** Reloads the table list; on failure the last one stays. @returns {Promise<any[]>} */
  async refreshTables() {
    try { this.tables = (await api('GET', '/tables')).body.tables || []; } catch { /* keep the last list */ }
    return this.tables;
  }

  // ---- notification -------------------------------------------------------------------------

  /** @param {string} event @param {(detail?: any) => void} fn */
  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    /** @type {Set<any>} */ (this.listeners.get(event)).add(fn);
  }

  /** @param {string} event @param {any} [detail] */
  emit(event, detail) {
    for (const fn of this.listeners.get(event) || []) fn(detail);
  }

  /** The document changed in structure: forget selected nodes that are gone, then tell the views. */
  redraw() {
    this.selection = new Set([...this.selection].filter((i) => i === START || this.doc.nodes[i]));
    this.emit('doc');
  }

  // ---- editing ------------------------------------------------------------------------------

  /** An undo step before a change that is applied in several moves (a drag, a focused field). */
  snapshot() { this.history.push(this.doc); }

  /** A structural change: undo snapshot, apply, redraw. @param {(d: any) => void} fn */
  edit(fn) {
    this.snapshot();
    fn(this.doc);
    this.redraw();
    this.changed();
  }

  /**
   * A field change from the inspector (its snapshot was taken on focus).
   * @param {(d: any) => void} fn @param {{canvas?: boolean}} [opts]
   */
  change(fn, opts = {}) {
    fn(this.doc);
    this.emit('fields', { canvas: !!opts.canvas });
    this.changed();
  }

  /** Positions moved in place (a drag or nudge): only the saved state changes. */
  moved() { this.touched(); }

  /** The saved state may differ now: keep unsaved edits in the tab and tell the views. */
  touched() {
    this.stash();
    this.emit('dirty');
  }

  /** After any change: the saved state, and a server check once typing pauses. */
  changed() {
    this.touched();
    clearTimeout(this.validateTimer);
    this.validateTimer = window.setTimeout(() => this.validate(), VALIDATE_DELAY_MS);
  }

  /** @returns {boolean} false when there is nothing to undo */
  undo() { return this.restore(this.history.back(this.doc)); }

  /** @returns {boolean} false when there is nothing to redo */
  redo() { return this.restore(this.history.forward(this.doc)); }

  /** @param {any} doc */
  restore(doc) {
    if (!doc) return false;
    this.doc = doc;
    this.redraw();
    this.changed();
    return true;
  }

  /**
   * Adds a node of `type` at a canvas position and selects it; returns its id.
   * @param {string} type @param {number} x @param {number} y @returns {string | null}
   */
  addNode(type, x, y) {
    const t = this.types.get(type);
    if (!t) return null;
    const nid = freshId(this.doc, type.replace(/^db\./, '').replace('.', '_'));
    const node = { type, ...starter(type) };
    if (t.binds) /** @type {any} */ (node).as = nid;
    this.edit((d) => {
      d.nodes[nid] = node;
      positions(d)[nid] = { x: Math.round(x), y: Math.round(y) };
      if (!d.entry) d.entry = nid;
    });
    this.select([nid]);
    return nid;
  }

  /** Wires `from.port` (or the start's entry/on_error) to `to`. @param {string} from @param {string} port @param {string} to */
  connect(from, port, to) {
    this.edit((d) => {
      if (from === START) d[port] = to;
      else d.nodes[from].next = { ...(d.nodes[from].next || {}), [port]: to };
    });
  }

  /** Removes nodes (never the start) and their wires; returns what was removed. @param {string[]} ids */
  remove(ids) {
    const list = ids.filter((i) => i !== START);
    if (!list.length) return list;
    this.edit((d) => removeNodes(d, list));
    this.select([]);
    return list;
  }

  /** Renames a node everywhere; false when the new id is taken. @param {string} from @param {string} to */
  rename(from, to) {
    if (this.doc.nodes[to]) return false;
    this.edit((d) => renameNode(d, from, to));
    this.select([to]);
    return true;
  }

  /** Lays every node out in layers. */
  tidy() {
    this.edit((d) => Object.assign(positions(d), layered(d, (n) => this.heightOf(n))));
  }

  /** The selected nodes as clipboard content, or null. */
  copySelection() {
    const ids = this.selectedNodes();
    return ids.length ? copyNodes(this.doc, ids) : null;
  }

  /**
   * Pastes clipboard content moved by (dx, dy) (40 px when not given) and selects it.
   * @param {any} clip @param {number} [dx] @param {number} [dy] @returns {string[]}
   */
  paste(clip, dx = 40, dy = 40) {
    /** @type {string[]} */
    let ids = [];
    this.edit((d) => { ids = pasteNodes(d, clip, dx, dy); });
    this.select(ids);
    return ids;
  }

  // ---- selection ----------------------------------------------------------------------------

  /** @param {Iterable<string>} ids */
  select(ids) {
    this.selection = new Set(ids);
    this.emit('selection');
  }

  /** The selected node ids, without the start. */
  selectedNodes() { return [...this.selection].filter((i) => i !== START); }

  // ---- layout -------------------------------------------------------------------------------

  /** @param {string} id */
  heightOf(id) { return nodeHeight(id === START ? null : this.doc.nodes[id], this.types); }

  /**
   * Gives nodes without a position one from the layered layout; when most are missing (a file
   * without layout) everything is laid out, so the result is tidy.
   * @param {boolean} [whole] lay out everything when the start has no position either
   */
  layoutMissing(whole = false) {
    const pos = positions(this.doc);
    const missing = [START, ...Object.keys(this.doc.nodes)].filter((n) => !pos[n]);
    if (!missing.length) return;
    const laid = layered(this.doc, (n) => this.heightOf(n));
    const all = whole && missing.length > Object.keys(this.doc.nodes).length;
    for (const n of all ? Object.keys(laid) : missing) pos[n] = laid[n];
  }

  // ---- saving -------------------------------------------------------------------------------

  dirty() { return JSON.stringify(this.doc) !== this.savedText; }

  /** Keeps unsaved edits in sessionStorage so leaving the screen loses nothing. */
  stash() {
    try {
      if (this.dirty()) sessionStorage.setItem(stashKey(this.id), JSON.stringify({ rev: this.rev, doc: this.doc }));
      else sessionStorage.removeItem(stashKey(this.id));
    } catch { /* storage full or disabled: nothing to keep */ }
  }

  /** Edits a previous visit left unsaved, when they differ from the saved draft. */
  stashed() {
    let kept = null;
    try { kept = JSON.parse(sessionStorage.getItem(stashKey(this.id)) || 'null'); } catch { kept = null; }
    return kept?.doc && JSON.stringify(kept.doc) !== this.savedText ? kept : null;
  }

  /** @param {{rev: string, doc: any}} kept */
  restoreStash(kept) {
    this.snapshot();
    // Saving goes through If-Match with the rev those edits started from, so a change made
    // elsewhere meanwhile shows the conflict dialog instead of being overwritten.
    this.rev = kept.rev;
    this.restore(kept.doc);
  }

  dropStash() { sessionStorage.removeItem(stashKey(this.id)); }

  /**
   * Saves the draft. Resolves `saved`, `unchanged` (nothing to save) or `conflict` (someone
   * saved meanwhile: the caller decides), or throws the API error (diagnostics already set when
   * the draft does not compile).
   * @returns {Promise<'saved' | 'unchanged' | 'conflict'>}
   */
  async save() {
    if (!this.dirty()) return 'unchanged';
    const sending = clone(this.doc);
    try {
      const r = await api('PUT', `/flows/${this.id}`, { body: sending, ifMatch: this.rev });
      this.record = r.body;
      this.rev = this.record.rev;
      this.savedText = JSON.stringify(sending);
      this.touched();
      return 'saved';
    } catch (e) {
      if (e instanceof ApiError && (e.code === 'flow.stale_rev' || e.status === 412)) return 'conflict';
      if (e instanceof ApiError && e.code === 'flow.invalid') this.setDiagnostics(e.details);
      throw e;
    }
  }

  /** Overwrites what someone else saved: the next save goes against their rev. @param {any} theirs */
  overwrite(theirs) { this.rev = theirs.rev; }

  /**
   * Replaces the draft with a record from the server (theirs, a rollback, an import); the
   * replaced draft stays undoable.
   * @param {any} record
   */
  load(record) {
    this.snapshot();
    this.record = record;
    this.rev = record.rev;
    this.doc = clone(record.document);
    this.layoutMissing();
    this.savedText = JSON.stringify(this.doc);
    this.redraw();
    this.changed();
  }

  /** Whether the saved draft is what is live already: publishing it would add nothing. */
  unchanged() {
    return !this.dirty() && !!this.record.published_version && this.record.published_rev === this.rev;
  }

  /**
   * Serves the saved draft as the next version (the caller saves first), with an optional
   * note; resolves the answer.
   * @param {string} [note]
   */
  async publish(note) {
    const r = (await api('POST', `/flows/${this.id}/publish`, { ifMatch: this.rev, body: note ? { note } : undefined })).body;
    this.record.published_version = r.version;
    this.record.published_rev = r.rev;
    this.record.live_route = r.url ? `${r.method} ${r.url}` : `function ${r.name}`;
    this.emit('dirty');
    return r;
  }

  async unpublish() {
    await api('DELETE', `/flows/${this.id}/publish`);
    this.record.published_version = null;
    this.record.published_rev = null;
    this.record.live_route = null;
    this.emit('dirty');
  }

  /** Makes a published version the draft (and serves it when `andPublish`). @param {number} version @param {boolean} andPublish */
  async rollback(version, andPublish) {
    const r = (await api('POST', `/flows/${this.id}/rollback`, { body: { version, publish: andPublish }, ifMatch: this.rev })).body;
    this.load(r);
    return r;
  }

  /** Loads the flow as the server has it now (after an import into it). */
  async reload() {
    this.load((await api('GET', `/flows/${this.id}`)).body);
  }

  // ---- server checks and runs ---------------------------------------------------------------

  /** Asks the server for the draft's diagnostics; answers that arrive late are dropped. */
  async validate() {
    const mine = ++this.validateSeq;
    try {
      const r = (await api('POST', '/flows/validate', { body: { document: this.doc } })).body;
      if (mine === this.validateSeq) { setScope(r.scope); this.setDiagnostics(r.diagnostics); }
    } catch (e) {
      if (mine === this.validateSeq) this.emit('problem', `Could not check the flow: ${/** @type {any} */ (e).message}`);
    }
  }

  /** @param {any[] | undefined} list */
  setDiagnostics(list) {
    this.diagnostics = list || [];
    this.emit('diagnostics');
  }

  /**
   * Runs the saved draft with a request (`POST /flows/{id}/run`); the caller saves first.
   * @param {{params: any, query: any, body: any, headers: Record<string, string>, commit: boolean}} req
   */
  async run(req) {
    try {
      this.lastRun = (await api('POST', `/flows/${this.id}/run`, { body: req })).body;
    } catch (e) {
      if (e instanceof ApiError && e.code === 'flow.invalid') this.setDiagnostics(e.details);
      throw e;
    }
    this.emit('run');
    return this.lastRun;
  }

  /** Shows a run that happened elsewhere (a job attempt) as the last run. @param {any} run */
  showTrace(run) {
    this.lastRun = run;
    this.emit('run');
  }

  clearRun() {
    this.lastRun = null;
    this.emit('run');
  }
}
