// @ts-check
// The flow document as the editor holds it: node ports from the node-type catalog, wiring,
// positions in `ui.nodes`, id allocation, renames, copy/paste and an undo stack of snapshots.
// Pure data; no DOM.

/** @typedef {{type: string, title?: string, terminal: boolean, binds: boolean,
 *   ports: {name: string, required: boolean}[], schema: any}} NodeType */

export const START = '__start';
const SLUG = /^[a-z][a-z0-9_]*$/;

/** @param {any} v */
export const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

/** @param {string} s */
export const isSlug = (s) => SLUG.test(s) && s.length <= 63;

/**
 * The output ports of a node, in display order: the type's ports, `switch` cases, then `error`.
 * @param {any} node @param {Map<string, NodeType>} types @returns {string[]}
 */
export function outPorts(node, types) {
  const t = types.get(node.type);
  const names = t ? t.ports.map((p) => p.name) : [];
  if (node.type === 'switch' && node.cases && typeof node.cases === 'object') {
    const err = names.indexOf('error');
    const cases = Object.keys(node.cases).filter((c) => !names.includes(c));
    names.splice(err < 0 ? names.length : err, 0, ...cases);
  }
  for (const p of Object.keys(node.next || {})) if (!names.includes(p)) names.push(p);
  return names;
}

/** Ports of the start pseudo-node: where a request enters and where unhandled failures go. */
export const START_PORTS = ['entry', 'on_error'];

/**
 * Every wire of the document: {from, port, to}. The start node's wires come first.
 * @param {any} doc @returns {{from: string, port: string, to: string}[]}
 */
export function wires(doc) {
  const out = [];
  if (doc.entry) out.push({ from: START, port: 'entry', to: doc.entry });
  if (doc.on_error) out.push({ from: START, port: 'on_error', to: doc.on_error });
  for (const [id, node] of Object.entries(doc.nodes || {})) {
    for (const [port, to] of Object.entries(node.next || {})) {
      if (typeof to === 'string') out.push({ from: id, port, to });
    }
  }
  return out;
}

/** @param {any} doc @param {string} from @param {string} port @param {string|null} to */
export function setWire(doc, from, port, to) {
  if (from === START) {
    if (to) doc[port] = to;
    else delete doc[port];
    return;
  }
  const node = doc.nodes[from];
  if (!node) return;
  if (to) {
    node.next = node.next || {};
    node.next[port] = to;
  } else if (node.next) {
    delete node.next[port];
    if (!Object.keys(node.next).length) delete node.next;
  }
}

/** Would wiring `from → to` close a cycle? @param {any} doc @param {string} from @param {string} to */
export function makesCycle(doc, from, to) {
  if (from === START) return false;
  const seen = new Set();
  const stack = [to];
  while (stack.length) {
    const id = /** @type {string} */ (stack.pop());
    if (id === from) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const t of Object.values(doc.nodes[id]?.next || {})) if (typeof t === 'string') stack.push(t);
  }
  return false;
}

/** A fresh node id based on `base`. @param {any} doc @param {string} base */
export function freshId(doc, base) {
  let stem = base.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^[^a-z]+/, '') || 'node';
  stem = stem.slice(0, 56);
  if (!doc.nodes[stem]) return stem;
  for (let i = 2; ; i++) if (!doc.nodes[`${stem}_${i}`]) return `${stem}_${i}`;
}

/** @param {any} doc @returns {Record<string, {x: number, y: number}>} */
export function positions(doc) {
  doc.ui = doc.ui && typeof doc.ui === 'object' ? doc.ui : {};
  doc.ui.nodes = doc.ui.nodes && typeof doc.ui.nodes === 'object' ? doc.ui.nodes : {};
  return doc.ui.nodes;
}

/** Renames a node and every reference to it. @param {any} doc @param {string} from @param {string} to */
export function renameNode(doc, from, to) {
  if (from === to || !doc.nodes[from] || doc.nodes[to]) return false;
  const nodes = {};
  for (const [id, n] of Object.entries(doc.nodes)) nodes[id === from ? to : id] = n;
  doc.nodes = nodes;
  for (const n of Object.values(doc.nodes)) {
    for (const [p, t] of Object.entries(n.next || {})) if (t === from) n.next[p] = to;
  }
  if (doc.entry === from) doc.entry = to;
  if (doc.on_error === from) doc.on_error = to;
  const pos = positions(doc);
  if (pos[from]) { pos[to] = pos[from]; delete pos[from]; }
  return true;
}

/** Removes nodes and every wire into them. @param {any} doc @param {Iterable<string>} ids */
export function removeNodes(doc, ids) {
  const gone = new Set(ids);
  gone.delete(START);
  for (const id of gone) { delete doc.nodes[id]; delete positions(doc)[id]; }
  for (const n of Object.values(doc.nodes)) {
    for (const [p, t] of Object.entries(n.next || {})) if (gone.has(/** @type {string} */ (t))) delete n.next[p];
    if (n.next && !Object.keys(n.next).length) delete n.next;
  }
  if (gone.has(doc.entry)) delete doc.entry;
  if (gone.has(doc.on_error)) delete doc.on_error;
}

/** What copy puts on the clipboard. @param {any} doc @param {Iterable<string>} ids */
export function copyNodes(doc, ids) {
  const pos = positions(doc);
  const nodes = {};
  const at = {};
  for (const id of ids) {
    if (!doc.nodes[id]) continue;
    nodes[id] = clone(doc.nodes[id]);
    at[id] = pos[id] ? { ...pos[id] } : { x: 0, y: 0 };
  }
  return { sluice_nodes: 1, nodes, at };
}

/**
 * Pastes copied nodes under fresh ids, keeping wires among them and dropping the rest.
 * @param {any} doc @param {any} clip @param {number} dx @param {number} dy @returns {string[]}
 */
export function pasteNodes(doc, clip, dx, dy) {
  if (!clip || clip.sluice_nodes !== 1) return [];
  const map = {};
  for (const id of Object.keys(clip.nodes)) {
    map[id] = freshId(doc, id);
    doc.nodes[map[id]] = {}; // reserve the id
  }
  const pos = positions(doc);
  for (const [id, n] of Object.entries(clip.nodes)) {
    const copy = clone(n);
    if (copy.next) {
      for (const [p, t] of Object.entries(copy.next)) {
        if (map[t]) copy.next[p] = map[t];
        else delete copy.next[p];
      }
      if (!Object.keys(copy.next).length) delete copy.next;
    }
    doc.nodes[map[id]] = copy;
    pos[map[id]] = { x: Math.round(clip.at[id].x + dx), y: Math.round(clip.at[id].y + dy) };
  }
  return Object.values(map);
}

/** Undo/redo over whole-document snapshots (a 60-node flow is a few KiB). */
export class History {
  constructor(limit = 200) { /** @type {string[]} */ this.undo = []; /** @type {string[]} */ this.redo = []; this.limit = limit; }
  /** @param {any} doc */
  push(doc) {
    const s = JSON.stringify(doc);
    if (this.undo[this.undo.length - 1] === s) return;
    this.undo.push(s);
    if (this.undo.length > this.limit) this.undo.shift();
    this.redo = [];
  }
  /** @param {any} doc @returns {any|null} */
  back(doc) {
    const s = this.undo.pop();
    if (s === undefined) return null;
    this.redo.push(JSON.stringify(doc));
    return JSON.parse(s);
  }
  /** @param {any} doc @returns {any|null} */
  forward(doc) {
    const s = this.redo.pop();
    if (s === undefined) return null;
    this.undo.push(JSON.stringify(doc));
    return JSON.parse(s);
  }
}

/** JSON with sorted keys and two-space indent, as the server's canonical form (defaults aside). */
export function canonical(v) {
  const sort = (x) => {
    if (Array.isArray(x)) return x.map(sort);
    if (x && typeof x === 'object') {
      const o = {};
      for (const k of Object.keys(x).sort()) o[k] = sort(x[k]);
      return o;
    }
    return x;
  };
  return JSON.stringify(sort(v), null, 2) + '\n';
}

/** The document without its layout, to tell logic changes from moves. @param {any} doc */
export function logicOf(doc) {
  const { ui, ...rest } = doc || {};
  return canonical(rest);
}
