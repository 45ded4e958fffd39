// @ts-check
/**
 * Adding nodes on the flow screen: where a new node goes (the pure `freeSpot` of layout.js, fed
 * with the canvas's boxes, the selection and the view) and adding one after a step (the stack
 * view, the palette while it is shown). Every way of adding a node goes through here, so none
 * lands on another node.
 */
import { NODE_W, freeSpot, nodeHeight } from './layout.js';
import { START } from './model.js';
import { afterPort, insertAfter } from './steps.js';

/**
 * @param {import('./state.js').FlowState} state
 * @param {() => import('./canvas.js').Canvas} canvasOf the canvas (made after this)
 * @param {(message: string) => void} announce
 */
export function nodeAdder(state, canvasOf, announce) {
  /** The visible part of the world, or null while the canvas is hidden. */
  const view = () => {
    const v = canvasOf().viewBox();
    return v.w > 0 && Number.isFinite(v.w) ? v : null;
  };

  /**
   * Where a box of `size` goes: at `at`, or next to `near` (else the one selected node), else in
   * the view's free space.
   * @param {{w: number, h: number}} size @param {{at?: {x: number, y: number}, near?: string}} [want]
   */
  const spot = (size, want = {}) => {
    const boxes = canvasOf().boxes();
    const sel = state.selectedNodes();
    const nearId = want.near || (sel.length ? sel[0] : state.selection.has(START) ? START : '');
    const near = want.at ? null : boxes.find((b) => b.id === nearId) || null;
    return freeSpot(boxes, size, { at: want.at || null, near, view: view() });
  };

  /**
   * Adds a node of `type` in free space, selects and shows it; returns its id.
   * @param {string} type @param {{at?: {x: number, y: number}, near?: string}} [want]
   */
  const place = (type, want) => {
    const p = spot({ w: NODE_W, h: nodeHeight({ type }, state.types) }, want);
    const nid = state.addNode(type, p.x, p.y);
    if (!nid) return null;
    announce(`Added ${type} node ${nid}`);
    canvasOf().reveal([nid]);
    return nid;
  };

  /**
   * Adds a node of `type` after step `from` (through `port`, else its continuation), wired in
   * before whatever came next; returns its id.
   * @param {string} from @param {string} type @param {string | null} [port]
   */
  const after = (from, type, port = null) => {
    const p = port || afterPort(state.doc, state.types, from);
    if (!p) { announce(`${from} has no port to go on from`); return null; }
    const nid = place(type, { near: from });
    if (!nid) return null;
    state.edit((d) => insertAfter(d, state.types, from, p, nid));
    state.select([nid]);
    return nid;
  };

  /** The one selected node (or the request box) a step can be added after, or ''. */
  const stepToFollow = () => {
    const sel = state.selectedNodes();
    const from = sel.length === 1 ? sel[0] : !sel.length && state.selection.has(START) ? START : '';
    return from && afterPort(state.doc, state.types, from) ? from : '';
  };

  return { spot, place, after, stepToFollow };
}
