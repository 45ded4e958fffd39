// @ts-check
// Line diff (Myers' O(ND) algorithm) and hunks with context, for version comparison.

/**
 * @param {string[]} a @param {string[]} b
 * @returns {{op: ' '|'-'|'+', text: string, a?: number, b?: number}[]}
 */
export function diffLines(a, b) {
  const n = a.length, m = b.length, max = n + m;
  const v = new Int32Array(2 * max + 2);
  /** @type {Int32Array[]} */
  const trace = [];
  let found = false;
  for (let d = 0; d <= max && !found; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[max + k - 1] < v[max + k + 1]) ? v[max + k + 1] : v[max + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) { x++; y++; }
      v[max + k] = x;
      if (x >= n && y >= m) { found = true; break; }
    }
  }
  // Walk back through the saved frontiers.
  const out = [];
  let x = n, y = m;
  for (let d = trace.length - 1; d >= 0; d--) {
    const vd = trace[d];
    const k = x - y;
    const prevK = k === -d || (k !== d && vd[max + k - 1] < vd[max + k + 1]) ? k + 1 : k - 1;
    const px = vd[max + prevK], py = px - prevK;
    while (x > px && y > py) { x--; y--; out.push({ op: ' ', text: a[x], a: x + 1, b: y + 1 }); }
    if (d > 0) {
      if (x === px) { y--; out.push({ op: '+', text: b[y], b: y + 1 }); }
      else { x--; out.push({ op: '-', text: a[x], a: x + 1 }); }
    }
  }
  return /** @type {any} */ (out.reverse());
}

/** Groups a diff into hunks with `context` unchanged lines around each change. */
export function hunks(lines, context = 3) {
  const keep = new Array(lines.length).fill(false);
  lines.forEach((l, i) => {
    if (l.op === ' ') return;
    for (let j = Math.max(0, i - context); j <= Math.min(lines.length - 1, i + context); j++) keep[j] = true;
  });
  const out = [];
  let cur = null;
  lines.forEach((l, i) => {
    if (!keep[i]) { cur = null; return; }
    if (!cur) { cur = []; out.push(cur); }
    cur.push(l);
  });
  return out;
}
