// @ts-check
/**
 * Keyboard shortcuts of the flow screen (the table in docs/EDITOR.md): save, run, undo, redo,
 * copy, paste, select all, delete, nudge (in the stack view: up/down between steps), zoom,
 * connect (W). Typing in a field keeps its keys, except save and run. Copied nodes stay in this
 * module, so they can be pasted into another flow; a paste lands in free space next to the
 * selected node.
 */

import { NODE_W, nodeHeight } from './layout.js';

/** Copied nodes, kept across flows while the editor is open. */
let clipboard = /** @type {any} */ (null);

/**
 * Listens on the document until the returned function is called.
 * @param {HTMLElement} screen the flow screen (keys are ignored once it is gone)
 * @param {import('./state.js').FlowState} state
 * @param {import('./canvas.js').Canvas} canvas
 * @param {{save: () => any, run: () => any, undo: () => void, redo: () => void, remove: (ids: string[]) => void, announce: (m: string) => void,
 *   connect: (id: string) => void, placeGroup: (size: {w: number, h: number}) => {x: number, y: number}}} act
 * @returns {() => void} stops listening
 */
export function flowKeys(screen, state, canvas, act) {
  /** @param {KeyboardEvent} e */
  const onKey = (e) => {
    if (!screen.isConnected) return stop();
    if (document.querySelector('dialog[open]')) return;
    const mod = e.ctrlKey || e.metaKey;
    const k = e.key.toLowerCase();
    const typing = /** @type {HTMLElement} */ (e.target).closest?.('input, textarea, select, [contenteditable]');
    if (mod && k === 's') { e.preventDefault(); act.save(); return; }
    if (mod && k === 'enter') { e.preventDefault(); act.run(); return; }
    if (typing) { if (e.key === 'Escape') /** @type {HTMLElement} */ (typing).blur(); return; }
    if (mod && k === 'z' && !e.shiftKey) { e.preventDefault(); act.undo(); }
    else if (mod && ((k === 'z' && e.shiftKey) || k === 'y')) { e.preventDefault(); act.redo(); }
    else if (mod && k === 'c') copy();
    else if (mod && k === 'v') { if (clipboard) { e.preventDefault(); paste(); } }
    else if (mod && k === 'a') { e.preventDefault(); canvas.select(Object.keys(state.doc.nodes)); }
    else if (e.key === 'Delete' || e.key === 'Backspace') { if (!canvas.deleteWire()) act.remove([...state.selection]); }
    else if (e.key === 'Escape') canvas.select([]);
    else if (e.key.startsWith('Arrow') && canvas.root.hidden) stepFocus(e);
    else if (e.key.startsWith('Arrow') && state.selection.size && !mod) { e.preventDefault(); nudge(e); }
    else if (k === 'w' && !mod && !e.altKey) {
      // The focused step or node first (Tab reaches them), else the one selected node.
      const on = /** @type {HTMLElement} */ (e.target).closest?.('.fl-stack-step, .fl-node');
      const sel = on instanceof HTMLElement && on.dataset.id ? [on.dataset.id] : [...state.selection];
      if (sel.length === 1) { e.preventDefault(); act.connect(sel[0]); }
      else act.announce(sel.length ? 'Select one node to connect it' : 'Select a node first (Tab to it), then press W to connect it');
    }
    else if ((e.key === '+' || e.key === '=') && !mod) canvas.zoom(1.2);
    else if (e.key === '-' && !mod) canvas.zoom(1 / 1.2);
  };

  const copy = () => {
    const clip = state.copySelection();
    if (!clip) return;
    clipboard = clip;
    navigator.clipboard?.writeText(JSON.stringify(clipboard)).catch(() => {});
    const n = Object.keys(clip.nodes).length;
    act.announce(`Copied ${n} node${n === 1 ? '' : 's'}`);
  };

  const paste = () => {
    // The copied nodes keep their arrangement; the group goes to free space (layout.js).
    const at = Object.keys(clipboard.at || {}).map((id) => ({ ...clipboard.at[id], h: nodeHeight(clipboard.nodes[id], state.types) }));
    const x0 = Math.min(...at.map((p) => p.x)), y0 = Math.min(...at.map((p) => p.y));
    const x1 = Math.max(...at.map((p) => p.x + NODE_W)), y1 = Math.max(...at.map((p) => p.y + p.h));
    const spot = at.length ? act.placeGroup({ w: x1 - x0, h: y1 - y0 }) : { x: x0 + 40, y: y0 + 40 };
    const ids = state.paste(clipboard, spot.x - x0, spot.y - y0);
    canvas.reveal(ids);
    act.announce(`Pasted ${ids.join(', ')}`);
  };

  /** In the stack view (the canvas is hidden), up and down move between steps. @param {KeyboardEvent} e */
  const stepFocus = (e) => {
    if (e.key !== 'ArrowUp' && e.key !== 'ArrowDown') return;
    const steps = [...screen.querySelectorAll('.fl-stack-step')];
    const at = steps.indexOf(/** @type {Element} */ (document.activeElement));
    if (at < 0) return;
    e.preventDefault();
    const to = /** @type {HTMLElement | undefined} */ (steps[at + (e.key === 'ArrowUp' ? -1 : 1)]);
    to?.focus();
  };

  /** @param {KeyboardEvent} e */
  const nudge = (e) => {
    const step = e.shiftKey ? 50 : 10;
    const dx = e.key === 'ArrowLeft' ? -step : e.key === 'ArrowRight' ? step : 0;
    const dy = e.key === 'ArrowUp' ? -step : e.key === 'ArrowDown' ? step : 0;
    state.snapshot();
    canvas.nudge(dx, dy);
    state.moved();
  };

  /** @param {BeforeUnloadEvent} e */
  const onUnload = (e) => { if (screen.isConnected && state.dirty()) { e.preventDefault(); e.returnValue = ''; } };
  document.addEventListener('keydown', onKey);
  window.addEventListener('beforeunload', onUnload);
  const stop = () => {
    document.removeEventListener('keydown', onKey);
    window.removeEventListener('beforeunload', onUnload);
  };
  return stop;
}

