// @ts-check
/**
 * The flow as a list of steps (what the stack view shows) and the edits that view makes:
 * insert after a step, move a step up or down a linear chain, remove a step and close the gap.
 * Pure functions of the document and the node-type catalog; no DOM.
 *
 * A node's *continuation* is the port the list goes on through: the type's first port that
 * sets its `as` variable (`ok`, `found`, `valid`), else its only required port. Every other
 * wired port (`then`/`else`, switch cases, `not_found`, `conflict`, `error`) is a branch, shown
 * indented under its step. A node reached a second time is a jump ("go to step 4").
 */
import { START, outPorts, wires } from './model.js';

/**
 * @typedef {{kind: 'step', id: string, n: number, branches: Branch[]}} Step
 * @typedef {{kind: 'jump', id: string, n: number}} Jump
 * @typedef {{port: string, items: (Step | Jump)[]}} Branch  a wired port, or a required one not
 *   wired yet (no items)
 * @typedef {{main: (Step | Jump)[], onError: (Step | Jump)[], loose: (Step | Jump)[][]}} Stack
 */

/**
 * The port the list goes on through, or null (the node only branches, or ends the flow).
 * @param {any} node @param {Map<string, any>} types
 */
export function continuation(node, types) {
  const t = types.get(node?.type);
  if (!t || t.terminal) return null;
  const ports = (t.ports || []).filter((/** @type {any} */ p) => p.name !== 'error');
  const binds = ports.find((/** @type {any} */ p) => p.binds);
  if (binds) return binds.name;
  const required = ports.filter((/** @type {any} */ p) => p.required);
  if (node.type === 'switch') return null;
  return required.length === 1 ? required[0].name : null;
}

/**
 * The ports of a node that must be wired: the type's required ones and a switch's cases.
 * @param {any} node @param {Map<string, any>} types @returns {Set<string>}
 */
export function requiredPorts(node, types) {
  const t = types.get(node?.type);
  const names = new Set((t?.ports || []).filter((/** @type {any} */ p) => p.required).map((/** @type {any} */ p) => p.name));
  if (node?.type === 'switch' && node.cases && typeof node.cases === 'object') for (const c of Object.keys(node.cases)) names.add(c);
  return names;
}

/**
 * The steps of a flow in reading order: from the entry, then the on_error handler, then the
 * nodes the request never reaches (each loose chain from a node nothing leads to).
 * @param {any} doc @param {Map<string, any>} types @returns {Stack}
 */
export function stackOf(doc, types) {
  const seen = new Map();
  let count = 0;
  /** @param {string | undefined} first @returns {(Step | Jump)[]} */
  const chain = (first) => {
    /** @type {(Step | Jump)[]} */
    const items = [];
    let id = first;
    while (id && doc.nodes[id]) {
      if (seen.has(id)) { items.push({ kind: 'jump', id, n: seen.get(id) }); break; }
      const node = doc.nodes[id];
      /** @type {Step} */
      const step = { kind: 'step', id, n: ++count, branches: [] };
      seen.set(id, step.n);
      items.push(step);
      const cont = continuation(node, types);
      const required = requiredPorts(node, types);
      for (const port of outPorts(node, types)) {
        const to = node.next?.[port];
        if (port === cont) continue;
        if (typeof to === 'string') step.branches.push({ port, items: chain(to) });
        else if (required.has(port)) step.branches.push({ port, items: [] });
      }
      id = cont ? node.next?.[cont] : undefined;
    }
    return items;
  };
  const main = chain(doc.entry);
  const onError = chain(doc.on_error);
  const into = new Set(wires(doc).map((w) => w.to));
  /** @type {(Step | Jump)[][]} */
  const loose = [];
  for (const id of Object.keys(doc.nodes)) if (!seen.has(id) && !into.has(id)) loose.push(chain(id));
  for (const id of Object.keys(doc.nodes)) if (!seen.has(id)) loose.push(chain(id));
  return { main, onError, loose };
}

/** The wires into `id`: `{from, port}`. @param {any} doc @param {string} id */
export function incoming(doc, id) {
  return wires(doc).filter((w) => w.to === id).map((w) => ({ from: w.from, port: w.port }));
}

/** @param {any} doc @param {string} from @param {string} port @param {string | null | undefined} to */
function wire(doc, from, port, to) {
  if (from === START) {
    if (to) doc[port] = to; else delete doc[port];
    return;
  }
  const n = doc.nodes[from];
  if (to) n.next = { ...(n.next || {}), [port]: to };
  else if (n.next) { delete n.next[port]; if (!Object.keys(n.next).length) delete n.next; }
}

/** Whether the wiring has a loop. @param {any} doc */
export function hasCycle(doc) {
  const state = new Map();
  /** @param {string} id @returns {boolean} */
  const visit = (id) => {
    if (state.get(id) === 1) return true;
    if (state.get(id) === 2 || !doc.nodes[id]) return false;
    state.set(id, 1);
    for (const t of Object.values(doc.nodes[id].next || {})) if (typeof t === 'string' && visit(t)) return true;
    state.set(id, 2);
    return false;
  };
  return Object.keys(doc.nodes).some((id) => visit(id));
}

/**
 * Wires a new node `nid` in after `from.port`: what that port led to now follows `nid` (through
 * its continuation, or its first required port when it only branches: `then` of an `if`).
 * `nid` must already be in the document.
 * @param {any} doc @param {Map<string, any>} types @param {string} from @param {string} port @param {string} nid
 */
export function insertAfter(doc, types, from, port, nid) {
  const old = from === START ? doc[port] : doc.nodes[from]?.next?.[port];
  wire(doc, from, port, nid);
  // A node that only branches (if, switch) goes on to the old next step through its first port.
  const cont = continuation(doc.nodes[nid], types) || [...requiredPorts(doc.nodes[nid], types)][0];
  if (old && old !== nid && cont) wire(doc, nid, cont, old);
}

/**
 * Where a step's list goes on: the port after which a new step is inserted (its continuation,
 * or the start's entry). Null for a step that ends or only branches.
 * @param {any} doc @param {Map<string, any>} types @param {string} id
 */
export function afterPort(doc, types, id) {
  return id === START ? 'entry' : continuation(doc.nodes[id], types);
}

/**
 * Moves step `id` one place up (`-1`) or down (`1`) in a linear chain: it swaps with the step
 * before (after) it when both are reached only through that chain's continuation. Returns false
 * (and leaves `doc` as it was) when that is not the case or the swap would make a loop.
 * @param {any} doc @param {Map<string, any>} types @param {string} id @param {-1 | 1} dir
 */
export function moveStep(doc, types, id, dir) {
  let a, b; // a comes before b; they swap
  if (dir === -1) {
    const into = incoming(doc, id);
    if (into.length !== 1 || into[0].from === START) return false;
    a = into[0].from; b = id;
  } else {
    const cont = continuation(doc.nodes[id], types);
    const next = cont && doc.nodes[id]?.next?.[cont];
    if (!next) return false;
    a = id; b = next;
  }
  const contA = continuation(doc.nodes[a], types);
  const contB = continuation(doc.nodes[b], types);
  if (!contA || !contB || doc.nodes[a].next?.[contA] !== b) return false;
  const intoA = incoming(doc, a), intoB = incoming(doc, b);
  if (intoA.length !== 1 || intoB.length !== 1) return false;
  const before = JSON.stringify(doc);
  const after = doc.nodes[b].next?.[contB];
  wire(doc, intoA[0].from, intoA[0].port, b);
  wire(doc, b, contB, a);
  wire(doc, a, contA, after);
  if (hasCycle(doc)) {
    Object.assign(doc, JSON.parse(before));
    return false;
  }
  return true;
}

/**
 * Removes step `id` and closes the gap: when one wire leads into it and it goes on through its
 * continuation, that wire now leads where it went on to. Other wires into it are dropped.
 * @param {any} doc @param {Map<string, any>} types @param {string} id
 */
export function removeStep(doc, types, id) {
  const node = doc.nodes[id];
  if (!node) return;
  const cont = continuation(node, types);
  const after = cont ? node.next?.[cont] : undefined;
  const into = incoming(doc, id);
  delete doc.nodes[id];
  if (doc.ui?.nodes) delete doc.ui.nodes[id];
  for (const w of into) wire(doc, w.from, w.port, into.length === 1 && after && after !== id ? after : null);
}
