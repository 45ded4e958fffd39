// @ts-check
// The flow canvas: nodes as absolutely placed boxes moved with CSS transforms, wires as SVG
// bezier curves, one world element that pans and zooms. Port positions come from fixed
// geometry (layout.js; no layout reads while dragging); a drag only redraws the wires of moved
// nodes, once per animation frame. Each card has a summary line (summary.js). Fit never goes
// below READABLE_ZOOM: a larger flow is shown from its start and the minimap (minimap.js,
// fed through `onView`) shows the rest. Nodes are focusable in reading order; focusing one,
// or anything scrolling the canvas, pans instead of scrolling.

import { h, icon } from '../dom.js';
import { START, START_PORTS, makesCycle, outPorts, wires, positions } from './model.js';

import { HEAD, NODE_W, ROW, nodeHeight, portsTop } from './layout.js';
import { summary } from './summary.js';

export { NODE_W };

/** The smallest zoom Fit uses: card text stays about 10 px. Past it, Fit pans instead. */
export const READABLE_ZOOM = 0.8;
const SVG = 'http://www.w3.org/2000/svg';

const key = (from, port) => `${from}\u0000${port}`;

/**
 * @typedef {{
 *   types: Map<string, any>,
 *   doc: () => any,
 *   edit: (label: string, fn: (doc: any) => void) => void,
 *   moved: () => void,
 *   snapshot: () => void,
 *   select: (ids: Set<string>) => void,
 *   say: (msg: string, loud?: boolean) => void,
 *   addNode: (type: string, x: number, y: number) => void,
 *   quickAdd: (from: string, port: string, at: {x: number, y: number}, client: {x: number, y: number}) => void,
 * }} CanvasHost
 */

export class Canvas {
  /** @param {HTMLElement} root @param {CanvasHost} host */
  constructor(root, host) {
    this.root = root;
    this.host = host;
    this.tx = 40; this.ty = 200; this.z = 1;
    /** @type {Set<string>} */ this.selection = new Set();
    /** @type {string|null} */ this.selectedWire = null;
    /** @type {Map<string, HTMLElement>} */ this.nodeEls = new Map();
    /** @type {Map<string, {path: SVGPathElement, hit: SVGPathElement, from: string, port: string, to: string}>} */
    this.wireEls = new Map();
    /** @type {Map<string, Set<string>>} wire keys touching each node */ this.touching = new Map();
    this.diags = new Map();
    /** @type {Map<string, any>|null} */ this.trace = null;
    this.fired = new Set();
    /** Called after the view or the nodes' places change (the minimap listens). */
    this.onView = () => {};

    root.classList.add('fl-canvas');
    root.tabIndex = 0;
    root.setAttribute('role', 'application');
    root.setAttribute('aria-label', 'Flow canvas. Tab to a node; W connects it (or drag from a port); shift-drag selects several; Delete removes the selection.');
    this.world = h('div', { class: 'fl-world' });
    this.svg = /** @type {SVGSVGElement} */ (document.createElementNS(SVG, 'svg'));
    this.svg.classList.add('fl-wires');
    this.svg.setAttribute('aria-hidden', 'true');
    this.temp = /** @type {SVGPathElement} */ (document.createElementNS(SVG, 'path'));
    this.temp.classList.add('fl-wire', 'fl-wire-temp');
    this.band = h('div', { class: 'fl-band' });
    this.unwire = h('button', { class: 'fl-unwire', type: 'button' }, icon('close'));
    this.unwire.title = 'Disconnect this wire';
    this.unwire.setAttribute('aria-label', 'Disconnect the selected wire');
    this.unwire.hidden = true;
    this.unwire.addEventListener('click', (e) => { e.stopPropagation(); this.deleteWire(); });
    this.world.append(this.svg, this.unwire);
    root.append(this.world, this.band);

    root.addEventListener('pointerdown', (e) => this.down(e));
    root.addEventListener('wheel', (e) => this.wheel(e), { passive: false });
    root.addEventListener('dragover', (e) => {
      if (e.dataTransfer?.types.includes('application/x-sluice-node')) { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; }
    });
    root.addEventListener('drop', (e) => {
      const type = e.dataTransfer?.getData('application/x-sluice-node');
      if (!type) return;
      e.preventDefault();
      const p = this.toWorld(e.clientX, e.clientY);
      host.addNode(type, p.x - NODE_W / 2, p.y - HEAD / 2);
    });
    root.addEventListener('mouseover', (e) => this.hover(e));
    // Tab moves focus to nodes outside the view: the browser would scroll the canvas (it clips,
    // so it scrolls invisibly); undo that and pan the node into view instead.
    root.addEventListener('focusin', (e) => {
      this.absorbScroll();
      const n = /** @type {HTMLElement} */ (e.target).closest?.('.fl-node');
      if (n instanceof HTMLElement && n.dataset.id) this.reveal([n.dataset.id]);
    });
    root.addEventListener('scroll', () => this.absorbScroll());
    // Until the builder pans or zooms, the view keeps the whole flow fitted as the canvas
    // changes size (first layout, run panel opening, window resizing).
    this.userView = false;
    new ResizeObserver(() => { if (!this.userView && this.nodeEls.size) this.fit(); }).observe(root);
    this.applyView();
  }

  // ---- geometry ---------------------------------------------------------------------------

  /** @param {string} id */
  ports(id) {
    if (id === START) return START_PORTS;
    const node = this.host.doc().nodes[id];
    return node ? outPorts(node, this.host.types) : [];
  }

  /** @param {string} id */
  height(id) { return nodeHeight(id === START ? null : this.host.doc().nodes[id], this.host.types); }

  /** @param {string} id */
  pos(id) { return positions(this.host.doc())[id] || { x: 0, y: 0 }; }

  /** @param {string} id @param {string} port */
  outAt(id, port) {
    const p = this.pos(id);
    const i = Math.max(0, this.ports(id).indexOf(port));
    return { x: p.x + NODE_W, y: p.y + portsTop(id === START) + i * ROW + ROW / 2 };
  }

  /** @param {string} id */
  inAt(id) { const p = this.pos(id); return { x: p.x, y: p.y + HEAD / 2 }; }

  /** @param {number} cx @param {number} cy */
  toWorld(cx, cy) {
    const r = this.root.getBoundingClientRect();
    return { x: (cx - r.left - this.tx) / this.z, y: (cy - r.top - this.ty) / this.z };
  }

  applyView() {
    this.world.style.transform = `translate(${this.tx}px, ${this.ty}px) scale(${this.z})`;
    this.root.style.setProperty('--zoom', String(this.z));
    this.root.dataset.zoom = this.z.toFixed(2);
    // Zoomed far out, boxes show their ids large instead of unreadable port labels.
    this.root.dataset.lod = this.z < 0.5 ? 'far' : 'near';
    this.onView();
  }

  /**
   * Anything that scrolls the canvas (focus, scrollIntoView) pans it instead, by as much, so
   * what was scrolled into view stays where it is.
   */
  absorbScroll() {
    const dx = this.root.scrollLeft, dy = this.root.scrollTop;
    if (!dx && !dy) return;
    this.root.scrollLeft = 0; this.root.scrollTop = 0;
    this.tx -= dx; this.ty -= dy;
    this.userView = true;
    this.applyView();
  }

  /** Every node's box in world coordinates (the start box included). */
  boxes() {
    return [...this.nodeEls.keys()].map((id) => ({ id, ...this.pos(id), w: NODE_W, h: this.height(id) }));
  }

  /** The visible part of the world. */
  viewBox() {
    const r = this.root.getBoundingClientRect();
    return { x: -this.tx / this.z, y: -this.ty / this.z, w: r.width / this.z, h: r.height / this.z };
  }

  // ---- rendering --------------------------------------------------------------------------

  /** Rebuilds every node and wire from the document. */
  render() {
    const doc = this.host.doc();
    for (const el of this.nodeEls.values()) el.remove();
    this.nodeEls.clear();
    for (const w of this.wireEls.values()) { w.path.remove(); w.hit.remove(); }
    this.wireEls.clear();
    this.touching.clear();
    const frag = document.createDocumentFragment();
    // Tab goes through the nodes as they read: column by column, top to bottom.
    const pos = positions(doc);
    const col = (/** @type {string} */ id) => Math.round((pos[id]?.x || 0) / 100);
    const ids = Object.keys(doc.nodes || {}).sort((a, b) => col(a) - col(b) || (pos[a]?.y || 0) - (pos[b]?.y || 0));
    for (const id of [START, ...ids]) frag.append(this.nodeEl(id));
    this.world.append(frag);
    for (const w of wires(doc)) this.addWire(w.from, w.port, w.to);
    for (const id of [...this.selection]) if (!this.nodeEls.has(id)) this.selection.delete(id);
    if (this.selectedWire && !this.wireEls.has(this.selectedWire)) this.selectedWire = null;
    this.paintSelection();
    this.paintMarks();
    this.onView();
  }

  /** Rewrites every card's summary line from the document (a field changed in place). */
  refreshSummaries() {
    const doc = this.host.doc();
    for (const [id, el] of this.nodeEls) {
      const line = el.querySelector('.fl-summary-text');
      if (!line || !doc.nodes[id]) continue;
      const text = summary(doc.nodes[id], this.host.types.get(doc.nodes[id].type));
      if (line.textContent !== text) { line.textContent = text; /** @type {HTMLElement} */ (line).title = text; }
    }
  }

  /** @param {string} id */
  nodeEl(id) {
    const doc = this.host.doc();
    const node = doc.nodes[id];
    const el = h('div', { class: id === START ? 'fl-node fl-start' : 'fl-node' });
    el.dataset.id = id;
    el.tabIndex = 0;
    const type = id === START ? 'request' : node.type;
    el.dataset.type = type;
    el.setAttribute('role', 'group');
    el.setAttribute('aria-label', id === START ? 'Start: the request enters here' : `Node ${id}, ${type}`);
    const head = h('div', { class: 'fl-node-head' });
    if (id !== START) {
      const inp = h('span', { class: 'fl-port fl-in' });
      inp.dataset.id = id;
      inp.title = `into ${id}`;
      head.append(inp);
    }
    head.append(h('span', { class: 'fl-type' }, id === START ? [icon('play', { size: 9 }), ' request'] : type));
    if (id !== START) head.append(h('span', { class: 'fl-id', text: id }));
    head.append(h('span', { class: 'fl-badge' }));
    el.append(head);
    const list = h('ul', { class: 'fl-ports' });
    const ports = this.ports(id);
    if (id !== START) {
      const text = summary(node, this.host.types.get(node.type));
      const line = h('span', { class: 'fl-summary-text', text });
      line.title = text;
      list.append(h('li', { class: 'fl-summary' }, line));
      el.setAttribute('aria-label', `Node ${id}, ${type}${text ? `: ${text}` : ''}`);
    }
    const req = new Set((this.host.types.get(node?.type)?.ports || []).filter((p) => p.required).map((p) => p.name));
    for (const p of ports) {
      const li = h('li');
      const name = h('span', { class: 'fl-port-name', text: p });
      if (req.has(p)) name.classList.add('fl-required');
      if (p === 'error' || p === 'on_error') name.classList.add('fl-error-port');
      const dot = h('span', { class: 'fl-port fl-out' });
      dot.dataset.id = id;
      dot.dataset.port = p;
      dot.title = `${p}: drag to a node to connect`;
      li.append(name, dot);
      list.append(li);
    }
    el.append(list);
    const p = this.pos(id);
    el.style.transform = `translate(${p.x}px, ${p.y}px)`;
    this.nodeEls.set(id, el);
    return el;
  }

  /** @param {string} from @param {string} port @param {string} to */
  addWire(from, port, to) {
    if (!this.nodeEls.has(to)) return;
    const k = key(from, port);
    const path = /** @type {SVGPathElement} */ (document.createElementNS(SVG, 'path'));
    path.classList.add('fl-wire');
    if (port === 'error' || port === 'on_error') path.classList.add('fl-wire-error');
    const hit = /** @type {SVGPathElement} */ (document.createElementNS(SVG, 'path'));
    hit.classList.add('fl-wire-hit');
    hit.dataset.wire = k;
    const title = document.createElementNS(SVG, 'title');
    title.textContent = `${from === START ? 'request' : from}.${port} → ${to} (click to select)`;
    hit.append(title);
    this.svg.append(path, hit);
    this.wireEls.set(k, { path, hit, from, port, to });
    for (const id of [from, to]) {
      if (!this.touching.has(id)) this.touching.set(id, new Set());
      this.touching.get(id)?.add(k);
    }
    this.drawWire(k);
  }

  /** @param {string} k */
  drawWire(k) {
    const w = this.wireEls.get(k);
    if (!w) return;
    const d = curve(this.outAt(w.from, w.port), this.inAt(w.to));
    w.path.setAttribute('d', d);
    w.hit.setAttribute('d', d);
    if (this.selectedWire === k) this.placeUnwire();
  }

  paintSelection() {
    for (const [id, el] of this.nodeEls) {
      const on = this.selection.has(id);
      el.classList.toggle('is-selected', on);
      el.setAttribute('aria-current', String(on));
    }
    for (const [k, w] of this.wireEls) w.path.classList.toggle('is-selected', k === this.selectedWire);
    this.placeUnwire();
  }

  placeUnwire() {
    const w = this.selectedWire && this.wireEls.get(this.selectedWire);
    this.unwire.hidden = !w;
    if (!w) return;
    const a = this.outAt(w.from, w.port), b = this.inAt(w.to);
    this.unwire.style.transform = `translate(${(a.x + b.x) / 2 - 10}px, ${(a.y + b.y) / 2 - 10}px)`;
  }

  /** Problems and trace marks on nodes and wires. */
  paintMarks() {
    for (const [id, el] of this.nodeEls) {
      const ds = this.diags.get(id) || [];
      el.classList.toggle('has-problem', ds.length > 0);
      const badge = /** @type {HTMLElement} */ (el.querySelector('.fl-badge'));
      const t = this.trace?.get(id);
      el.classList.toggle('was-run', !!t);
      el.classList.toggle('has-failed', !!t?.failed);
      badge.textContent = ds.length ? `⚠ ${ds.length}` : t ? fmtUs(t.duration_us) : '';
      badge.title = ds.length ? ds.map((d) => d.message).join('\n') : t ? `ran in ${fmtUs(t.duration_us)}` : '';
    }
    for (const [k, w] of this.wireEls) w.path.classList.toggle('is-fired', this.fired.has(k));
  }

  /** @param {any[]} diags */
  setDiagnostics(diags) {
    this.diags = new Map();
    for (const d of diags) if (d.node) (this.diags.get(d.node) || this.diags.set(d.node, []).get(d.node)).push(d);
    this.paintMarks();
  }

  /** Lays a run's trace over the canvas; `null` clears it. @param {any[]|null} trace @param {any} error */
  setTrace(trace, error) {
    if (!trace) { this.trace = null; this.fired = new Set(); this.paintMarks(); return; }
    this.trace = new Map();
    this.fired = new Set();
    const doc = this.host.doc();
    if (trace.length && doc.entry === trace[0].node) this.fired.add(key(START, 'entry'));
    for (const t of trace) {
      const prev = this.trace.get(t.node);
      const entry = { ...t, duration_us: (prev?.duration_us || 0) + (t.duration_us || 0) };
      if (t.error || (error && error.node === t.node && !t.port)) entry.failed = true;
      this.trace.set(t.node, entry);
      if (t.port) this.fired.add(key(t.node, t.port));
      if (t.port === 'error' && !doc.nodes[t.node]?.next?.error && doc.on_error) this.fired.add(key(START, 'on_error'));
    }
    if (error?.node && doc.nodes[error.node]) {
      const e = this.trace.get(error.node) || { node: error.node };
      e.failed = true;
      e.error = e.error || error;
      this.trace.set(error.node, e);
    }
    this.paintMarks();
  }

  // ---- view -------------------------------------------------------------------------------

  /**
   * Fits the flow to the view, never below READABLE_ZOOM: a flow too large for that is shown
   * from its start (the request box) with as much as fits, and the minimap shows the rest.
   */
  fit() {
    const ids = [...this.nodeEls.keys()];
    if (!ids.length) return;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const id of ids) {
      const p = this.pos(id);
      x0 = Math.min(x0, p.x); y0 = Math.min(y0, p.y);
      x1 = Math.max(x1, p.x + NODE_W); y1 = Math.max(y1, p.y + this.height(id));
    }
    const r = this.root.getBoundingClientRect();
    if (r.width < 10 || r.height < 10) return;
    this.userView = false;
    const w = Math.max(200, r.width), hgt = Math.max(200, r.height), M = 20;
    this.z = clamp(Math.min((w - 2 * M) / (x1 - x0), (hgt - 2 * M) / (y1 - y0)), READABLE_ZOOM, 1.25);
    const s = this.pos(START), sh = this.height(START);
    // Each axis: centred when the flow fits; else from the flow's first edge, with the start
    // box in view (horizontally at the margin, vertically as near the middle as the flow allows).
    if ((x1 - x0) * this.z <= w - 2 * M) this.tx = (w - (x1 - x0) * this.z) / 2 - x0 * this.z;
    else {
      this.tx = M - x0 * this.z;
      if ((s.x + NODE_W) * this.z + this.tx > w - M) this.tx = M - s.x * this.z;
    }
    if ((y1 - y0) * this.z <= hgt - 2 * M) this.ty = (hgt - (y1 - y0) * this.z) / 2 - y0 * this.z;
    else this.ty = clamp(hgt / 2 - (s.y + sh / 2) * this.z, hgt - M - y1 * this.z, M - y0 * this.z);
    this.applyView();
  }

  /** @param {number} factor @param {number} [cx] @param {number} [cy] client point kept still */
  zoom(factor, cx, cy) {
    const r = this.root.getBoundingClientRect();
    const px = cx === undefined ? r.width / 2 : cx - r.left;
    const py = cy === undefined ? r.height / 2 : cy - r.top;
    const z = clamp(this.z * factor, 0.1, 2.5);
    this.userView = true;
    this.tx = px - ((px - this.tx) * z) / this.z;
    this.ty = py - ((py - this.ty) * z) / this.z;
    this.z = z;
    this.applyView();
  }

  /**
   * Pans so the nodes `ids` are in view when one of them is not: centred on them, or on the
   * first when they do not fit together. The zoom stays.
   * @param {Iterable<string>} ids
   */
  reveal(ids) {
    const v = this.viewBox();
    if (v.w * this.z < 10) return; // hidden (the stack view is shown): nothing to pan
    const boxes = [...ids].filter((id) => this.nodeEls.has(id)).map((id) => ({ ...this.pos(id), w: NODE_W, h: this.height(id) }));
    if (!boxes.length) return;
    const inside = (/** @type {{x: number, y: number, w: number, h: number}} */ b) => b.x >= v.x && b.y >= v.y && b.x + b.w <= v.x + v.w && b.y + b.h <= v.y + v.h;
    if (boxes.every(inside)) return;
    const x0 = Math.min(...boxes.map((b) => b.x)), y0 = Math.min(...boxes.map((b) => b.y));
    const x1 = Math.max(...boxes.map((b) => b.x + b.w)), y1 = Math.max(...boxes.map((b) => b.y + b.h));
    const first = boxes[0];
    if (x1 - x0 > v.w || y1 - y0 > v.h) this.centerOn(first.x + first.w / 2, first.y + first.h / 2);
    else this.centerOn((x0 + x1) / 2, (y0 + y1) / 2);
  }

  /** Pans so the world point (x, y) is in the middle of the view. @param {number} x @param {number} y */
  centerOn(x, y) {
    const r = this.root.getBoundingClientRect();
    this.userView = true;
    this.tx = r.width / 2 - x * this.z;
    this.ty = r.height / 2 - y * this.z;
    this.applyView();
  }

  /** Shows the nodes of a run's trace (see `reveal`). @param {Iterable<string>} ids */
  ensureVisible(ids) { this.reveal(ids); }

  /** The world point at the middle of the view. */
  center() {
    const r = this.root.getBoundingClientRect();
    return this.toWorld(r.left + r.width / 2, r.top + r.height / 2);
  }

  /** @param {WheelEvent} e */
  wheel(e) {
    e.preventDefault();
    if (e.ctrlKey || e.metaKey || !e.shiftKey) this.zoom(Math.exp(-e.deltaY * 0.0015), e.clientX, e.clientY);
    else { this.tx -= e.deltaX || e.deltaY; this.userView = true; this.applyView(); }
  }

  // ---- selection --------------------------------------------------------------------------

  /** @param {Iterable<string>} ids */
  select(ids) {
    this.selection = new Set(ids);
    this.selectedWire = null;
    this.paintSelection();
    this.host.select(this.selection);
  }

  /**
   * Shows a selection made elsewhere (the state, the keyboard) without reporting it back; the
   * same selection is left alone, so a selected wire stays selected.
   * @param {Set<string>} ids
   */
  showSelection(ids) {
    if (ids.size === this.selection.size && [...ids].every((i) => this.selection.has(i))) return;
    this.selection = new Set(ids);
    this.selectedWire = null;
    this.paintSelection();
  }

  deleteWire() {
    const w = this.selectedWire && this.wireEls.get(this.selectedWire);
    if (!w) return false;
    this.selectedWire = null;
    this.host.edit(`disconnect ${w.from}.${w.port}`, (doc) => {
      if (w.from === START) delete doc[w.port];
      else if (doc.nodes[w.from]?.next) {
        delete doc.nodes[w.from].next[w.port];
        if (!Object.keys(doc.nodes[w.from].next).length) delete doc.nodes[w.from].next;
      }
    });
    return true;
  }

  /** Moves the selected nodes by a few pixels (arrow keys). @param {number} dx @param {number} dy */
  nudge(dx, dy) {
    const pos = positions(this.host.doc());
    const touched = new Set();
    for (const id of this.selection) {
      const el = this.nodeEls.get(id);
      if (!el) continue;
      const p = this.pos(id);
      pos[id] = { x: p.x + dx, y: p.y + dy };
      el.style.transform = `translate(${pos[id].x}px, ${pos[id].y}px)`;
      for (const k of this.touching.get(id) || []) touched.add(k);
    }
    for (const k of touched) this.drawWire(k);
    this.onView();
  }

  // ---- gestures ---------------------------------------------------------------------------

  /** @param {PointerEvent} e */
  down(e) {
    if (e.button !== 0 && e.button !== 1) return;
    const t = /** @type {HTMLElement} */ (e.target);
    if (t.closest('.fl-unwire')) return;
    this.root.focus({ preventScroll: true });
    const out = t.closest('.fl-out');
    if (out instanceof HTMLElement && e.button === 0) return this.dragWire(e, /** @type {string} */ (out.dataset.id), /** @type {string} */ (out.dataset.port));
    const nodeEl = t.closest('.fl-node');
    if (nodeEl instanceof HTMLElement && e.button === 0) return this.dragNodes(e, /** @type {string} */ (nodeEl.dataset.id));
    const hit = t.closest('.fl-wire-hit');
    if (hit instanceof SVGElement && e.button === 0) {
      this.selection = new Set();
      this.selectedWire = hit.dataset.wire || null;
      this.paintSelection();
      this.host.select(this.selection);
      const w = this.selectedWire && this.wireEls.get(this.selectedWire);
      if (w) this.host.say(`Wire ${w.from === START ? 'start' : w.from}.${w.port} → ${w.to} selected. Press Delete or ✕ to disconnect.`);
      return;
    }
    if (e.shiftKey && e.button === 0) return this.rubberBand(e);
    this.pan(e);
  }

  /** @param {PointerEvent} e @param {(ev: PointerEvent) => void} move @param {(ev: PointerEvent) => void} up */
  track(e, move, up) {
    e.preventDefault();
    const id = e.pointerId;
    const mv = (/** @type {PointerEvent} */ ev) => { if (ev.pointerId === id) move(ev); };
    const done = (/** @type {PointerEvent} */ ev) => {
      if (ev.pointerId !== id) return;
      window.removeEventListener('pointermove', mv);
      window.removeEventListener('pointerup', done);
      window.removeEventListener('pointercancel', done);
      up(ev);
    };
    window.addEventListener('pointermove', mv);
    window.addEventListener('pointerup', done);
    window.addEventListener('pointercancel', done);
  }

  /** @param {PointerEvent} e */
  pan(e) {
    const sx = e.clientX, sy = e.clientY, tx = this.tx, ty = this.ty;
    let moved = false;
    this.root.classList.add('is-panning');
    this.track(e, (ev) => {
      if (Math.abs(ev.clientX - sx) + Math.abs(ev.clientY - sy) > 3) { moved = true; this.userView = true; }
      this.tx = tx + ev.clientX - sx;
      this.ty = ty + ev.clientY - sy;
      this.applyView();
    }, () => {
      this.root.classList.remove('is-panning');
      if (!moved) this.select([]);
    });
  }

  /** @param {PointerEvent} e */
  rubberBand(e) {
    const r = this.root.getBoundingClientRect();
    const sx = e.clientX, sy = e.clientY;
    const base = new Set(this.selection);
    this.band.hidden = false;
    const rect = (ev) => ({ x0: Math.min(sx, ev.clientX), y0: Math.min(sy, ev.clientY), x1: Math.max(sx, ev.clientX), y1: Math.max(sy, ev.clientY) });
    const show = (ev) => {
      const b = rect(ev);
      Object.assign(this.band.style, { display: 'block', left: `${b.x0 - r.left}px`, top: `${b.y0 - r.top}px`, width: `${b.x1 - b.x0}px`, height: `${b.y1 - b.y0}px` });
      const a = this.toWorld(b.x0, b.y0), c = this.toWorld(b.x1, b.y1);
      const sel = new Set(base);
      for (const id of this.nodeEls.keys()) {
        const p = this.pos(id);
        if (p.x < c.x && p.x + NODE_W > a.x && p.y < c.y && p.y + this.height(id) > a.y) sel.add(id);
      }
      this.selection = sel;
      this.paintSelection();
    };
    this.track(e, show, () => {
      this.band.style.display = 'none';
      this.select(this.selection);
    });
  }

  /** @param {PointerEvent} e @param {string} id */
  dragNodes(e, id) {
    if (e.shiftKey) {
      const s = new Set(this.selection);
      if (s.has(id)) s.delete(id); else s.add(id);
      this.select(s);
      return;
    }
    if (!this.selection.has(id)) this.select([id]);
    const ids = [...this.selection].filter((i) => this.nodeEls.has(i));
    const doc = this.host.doc();
    const pos = positions(doc);
    const start = new Map(ids.map((i) => [i, { ...this.pos(i) }]));
    const touched = new Set();
    for (const i of ids) for (const k of this.touching.get(i) || []) touched.add(k);
    const sx = e.clientX, sy = e.clientY;
    let dx = 0, dy = 0, frame = 0, moved = false;
    const paint = () => {
      frame = 0;
      for (const i of ids) {
        const p0 = /** @type {{x: number, y: number}} */ (start.get(i));
        const p = { x: Math.round(p0.x + dx), y: Math.round(p0.y + dy) };
        pos[i] = p;
        /** @type {HTMLElement} */ (this.nodeEls.get(i)).style.transform = `translate(${p.x}px, ${p.y}px)`;
      }
      for (const k of touched) this.drawWire(k);
    };
    this.track(e, (ev) => {
      dx = (ev.clientX - sx) / this.z;
      dy = (ev.clientY - sy) / this.z;
      if (!moved && Math.abs(dx) + Math.abs(dy) < 3 / this.z) return;
      if (!moved) { moved = true; this.root.classList.add('is-dragging'); this.host.snapshot(); }
      if (!frame) frame = requestAnimationFrame(paint);
    }, () => {
      this.root.classList.remove('is-dragging');
      if (frame) { cancelAnimationFrame(frame); paint(); }
      if (moved) { this.host.moved(); this.onView(); }
    });
  }

  /** @param {PointerEvent} e @param {string} from @param {string} port */
  dragWire(e, from, port) {
    const a = this.outAt(from, port);
    this.svg.append(this.temp);
    this.temp.setAttribute('d', curve(a, a));
    this.root.classList.add('is-wiring');
    this.track(e, (ev) => {
      const b = this.toWorld(ev.clientX, ev.clientY);
      this.temp.setAttribute('d', curve(a, b));
      for (const el of this.root.querySelectorAll('.is-drop-target')) el.classList.remove('is-drop-target');
      const over = document.elementFromPoint(ev.clientX, ev.clientY)?.closest('.fl-node');
      if (over instanceof HTMLElement && over.dataset.id !== START && over.dataset.id !== from) over.classList.add('is-drop-target');
    }, (ev) => {
      this.temp.remove();
      this.root.classList.remove('is-wiring');
      for (const el of this.root.querySelectorAll('.is-drop-target')) el.classList.remove('is-drop-target');
      const over = document.elementFromPoint(ev.clientX, ev.clientY)?.closest('.fl-node');
      const to = over instanceof HTMLElement ? over.dataset.id : undefined;
      const end = this.toWorld(ev.clientX, ev.clientY);
      if (!over && Math.hypot(end.x - a.x, end.y - a.y) > 40 && ev.target instanceof Element && ev.target.closest('.fl-canvas') === this.root) {
        this.host.quickAdd(from, port, end, { x: ev.clientX, y: ev.clientY });
        return;
      }
      if (!to || to === START || to === from) return;
      if (makesCycle(this.host.doc(), from, to)) {
        this.host.say(`${from} → ${to} would make a loop; flows are acyclic (repeat work with for_each).`, true);
        return;
      }
      this.host.edit(`connect ${from}.${port} → ${to}`, (doc) => {
        if (from === START) doc[port] = to;
        else { const n = doc.nodes[from]; n.next = { ...(n.next || {}), [port]: to }; }
      });
    });
  }

  /** Shows a node's trace entry as a tooltip while hovering. @param {MouseEvent} e */
  hover(e) {
    const el = /** @type {HTMLElement} */ (e.target).closest?.('.fl-node');
    if (!(el instanceof HTMLElement) || !this.trace) return;
    const t = this.trace.get(el.dataset.id || '');
    el.title = t ? traceText(t) : '';
  }
}

/** @param {{x: number, y: number}} a @param {{x: number, y: number}} b */
function curve(a, b) {
  const dx = Math.max(40, Math.abs(b.x - a.x) * 0.5);
  return `M${a.x},${a.y} C${a.x + dx},${a.y} ${b.x - dx},${b.y} ${b.x},${b.y}`;
}

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

/** @param {number|undefined} us */
export function fmtUs(us) {
  if (us === undefined || us === null) return '';
  return us >= 1000 ? `${(us / 1000).toFixed(us >= 10000 ? 0 : 1)} ms` : `${us} µs`;
}

/** @param {any} t */
export function traceText(t) {
  const lines = [`${t.node}: ${t.port ? `fired ${t.port}` : 'ended the request'} in ${fmtUs(t.duration_us)}`];
  if (t.error) lines.push(`error: ${typeof t.error === 'string' ? t.error : JSON.stringify(t.error)}`);
  if (t.output !== undefined) lines.push(`output: ${JSON.stringify(t.output).slice(0, 400)}`);
  return lines.join('\n');
}

/** Config fields each node type shows on its box (as ports or its summary line). */
const DRAWN = { switch: ['cases'], respond: ['status'], fail: ['status', 'code'] };

/**
 * Whether editing `field` of a `type` node changes how its box looks, so the canvas redraws.
 * @param {string} type @param {string} field
 */
export function drawnOnNode(type, field) {
  return (/** @type {Record<string, string[]>} */ (DRAWN)[type] || []).includes(field);
}
