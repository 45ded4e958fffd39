// @ts-check
/**
 * Keyboard shortcuts of the flow screen (the table in docs/EDITOR.md): save, run, undo, redo,
 * copy, paste, select all, delete, nudge, zoom. Typing in a field keeps its keys, except save
 * and run. Copied nodes stay in this module, so they can be pasted into another flow.
 */

/** Copied nodes, kept across flows while the editor is open. */
let clipboard = /** @type {any} */ (null);

/**
 * Listens on the document until the returned function is called.
 * @param {HTMLElement} screen the flow screen (keys are ignored once it is gone)
 * @param {import('./state.js').FlowState} state
 * @param {import('./canvas.js').Canvas} canvas
 * @param {{save: () => any, run: () => any, undo: () => void, redo: () => void, remove: (ids: string[]) => void, announce: (m: string) => void}} act
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
    else if (e.key.startsWith('Arrow') && state.selection.size && !mod) { e.preventDefault(); nudge(e); }
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
    const ids = state.paste(clipboard);
    // The next paste lands a step further, so repeated pastes do not stack up.
    clipboard = { ...clipboard, at: Object.fromEntries(Object.entries(clipboard.at).map(([n, p]) => [n, { x: /** @type {any} */ (p).x + 40, y: /** @type {any} */ (p).y + 40 }])) };
    act.announce(`Pasted ${ids.join(', ')}`);
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

