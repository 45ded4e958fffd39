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
 * The height of a node's box: its head, its summary line and one row per output port; `null`
 * is the start box (no summary line).
 * @param {any} node @param {Map<string, any>} types
 */
export function nodeHeight(node, types) {
  if (node === null) return HEAD + START_PORTS.length * ROW + PAD;
  const ports = node ? outPorts(node, types) : [];
  return HEAD + ROW + ports.length * ROW + PAD;
}

/** Where a node's first output port row starts, below its head (and summary line). @param {boolean} start */
export const portsTop = (start) => HEAD + (start ? 0 : ROW);

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
  /** @type {Record<string, {x: number, y: number}>} */
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

/** @typedef {{x: number, y: number, w: number, h: number}} Box */

/** Space kept free around a placed node. */
export const CLEAR = 24;

/** Whether `a` (with the clearance) overlaps `b`. @param {Box} a @param {Box} b */
export const overlaps = (a, b) =>
  a.x < b.x + b.w + CLEAR && b.x < a.x + a.w + CLEAR && a.y < b.y + b.h + CLEAR && b.y < a.y + a.h + CLEAR;

/**
 * Where to put a new box of `size` so it overlaps none of `boxes`: first `at` (a point asked
 * for, such as where a wire was dropped), then next to `near` (right of it, then below it, then
 * further along both), then the first free spot inside `view` (top left first), else below
 * everything. Pure: the caller turns it into a position.
 * @param {Box[]} boxes the boxes already there
 * @param {{w: number, h: number}} size
 * @param {{at?: {x: number, y: number} | null, near?: Box | null, view?: Box | null}} [prefer]
 * @returns {{x: number, y: number}}
 */
export function freeSpot(boxes, size, prefer = {}) {
  const free = (/** @type {number} */ x, /** @type {number} */ y) => boxes.every((b) => !overlaps({ x, y, w: size.w, h: size.h }, b));
  const STEP = ROW * 2;
  /** @type {{x: number, y: number}[]} */
  const tries = [];
  if (prefer.at) {
    const { x, y } = prefer.at;
    tries.push({ x, y });
    for (let i = 1; i <= 8; i++) tries.push({ x, y: y + i * STEP }, { x, y: y - i * STEP }, { x: x + i * STEP, y });
  }
  const near = prefer.near;
  if (near) {
    const right = near.x + COL, below = near.y + near.h + GAP;
    tries.push({ x: right, y: near.y }, { x: near.x, y: below });
    for (let i = 1; i <= 12; i++) {
      tries.push({ x: right, y: near.y + i * STEP }, { x: near.x, y: below + i * STEP }, { x: right, y: near.y - i * STEP });
    }
    for (let i = 1; i <= 4; i++) tries.push({ x: right + i * COL, y: near.y });
  }
  for (const t of tries) if (free(t.x, t.y)) return { x: Math.round(t.x), y: Math.round(t.y) };
  const view = prefer.view;
  if (view) {
    for (let y = view.y + CLEAR; y + size.h <= view.y + view.h - CLEAR; y += STEP / 2) {
      for (let x = view.x + CLEAR; x + size.w <= view.x + view.w - CLEAR; x += STEP / 2) {
        if (free(x, y)) return { x: Math.round(x), y: Math.round(y) };
      }
    }
  }
  if (!boxes.length) return view ? { x: Math.round(view.x + view.w / 2 - size.w / 2), y: Math.round(view.y + view.h / 2 - size.h / 2) } : { x: 0, y: 0 };
  const x0 = Math.min(...boxes.map((b) => b.x));
  const y1 = Math.max(...boxes.map((b) => b.y + b.h));
  return { x: Math.round(x0), y: Math.round(y1 + GAP + CLEAR) };
}
