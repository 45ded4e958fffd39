// @ts-check
// Automatic layered layout for flows without positions: layers by longest path from the start,
// order inside a layer by the mean position of a node's parents (one barycentre sweep).

import { START, START_PORTS, outPorts, wires } from './model.js';

/** Node box geometry, shared with the canvas (and flows.css): width, head, port row, padding. */
export const NODE_W = 210;
export const HEAD = 32;
export const ROW = 22;
export const PAD = 8;

/**
 * The height of a node's box: its head and one row per output port; `null` is the start box.
 * @param {any} node @param {Map<string, any>} types
 */
export function nodeHeight(node, types) {
  const ports = node === null ? START_PORTS : node ? outPorts(node, types) : [];
  return HEAD + Math.max(1, ports.length) * ROW + PAD;
}

export const COL = 270;
export const GAP = 36;

/**
 * @param {any} doc
 * @param {(id: string) => number} heightOf
 * @returns {Record<string, {x: number, y: number}>} positions of START and every node
 */
export function layered(doc, heightOf) {
  const ids = [START, ...Object.keys(doc.nodes || {})];
  const edges = wires(doc);
  const out = new Map(ids.map((id) => [id, /** @type {string[]} */ ([])]));
  const indeg = new Map(ids.map((id) => [id, 0]));
  for (const w of edges) {
    if (!out.has(w.to)) continue;
    out.get(w.from)?.push(w.to);
    indeg.set(w.to, (indeg.get(w.to) || 0) + 1);
  }
  // Longest-path layering in topological order; nodes left over (cycles, unreachable) go last.
  const layer = new Map(ids.map((id) => [id, 0]));
  const queue = ids.filter((id) => indeg.get(id) === 0);
  const done = new Set();
  while (queue.length) {
    const id = /** @type {string} */ (queue.shift());
    done.add(id);
    for (const t of out.get(id) || []) {
      layer.set(t, Math.max(layer.get(t) || 0, (layer.get(id) || 0) + 1));
      indeg.set(t, (indeg.get(t) || 0) - 1);
      if (indeg.get(t) === 0) queue.push(t);
    }
  }
  for (const id of ids) if (!done.has(id)) layer.set(id, Math.max(1, layer.get(id) || 0));
  // Unwired nodes that are not the start: put them in column 1 rather than beside the start.
  for (const id of ids) if (id !== START && (layer.get(id) || 0) === 0) layer.set(id, 1);

  /** @type {string[][]} */
  const columns = [];
  for (const id of ids) (columns[layer.get(id) || 0] ||= []).push(id);
  const order = new Map();
  const pos = {};
  columns.forEach((col, x) => {
    if (!col) return;
    if (x > 0) {
      const parents = (id) => edges.filter((w) => w.to === id && order.has(w.from)).map((w) => order.get(w.from));
      const key = new Map(col.map((id, i) => {
        const ps = parents(id);
        return [id, ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : 1e6 + i];
      }));
      col.sort((a, b) => key.get(a) - key.get(b));
    }
    let y = 0;
    const total = col.reduce((s, id) => s + heightOf(id) + GAP, -GAP);
    y = -total / 2;
    col.forEach((id, i) => {
      order.set(id, i + y / 1000);
      pos[id] = { x: x * COL, y: Math.round(y) };
      y += heightOf(id) + GAP;
    });
  });
  return pos;
}
