// @ts-check
/**
 * The flow screen's commands that need the builder as well as the state: save (with the
 * conflict dialog), publish, unpublish, versions and rollback, import, export, the stashed
 * edits offer and the problems list. Each calls `FlowState` operations and reports through the
 * shared toasts and dialogs; none keeps state of its own.
 */
import { api, ApiError } from '../api.js';
import { h } from '../dom.js';
import { dialog, diagList, errorBox, toast } from '../ui.js';
import { showHistory } from './history.js';
import { exportFlow, importDialog } from './io.js';
import { logicOf } from './model.js';

/**
 * @typedef {import('./state.js').FlowState} FlowState
 * @typedef {{announce: (msg: string) => void, fit: () => void}} Screen
 */

/** @param {FlowState} state @param {Screen} screen */
export function flowActions(state, screen) {
  /** Saves the draft; true when the server has it. */
  async function save() {
    try {
      const r = await state.save();
      if (r === 'conflict') return conflict();
      if (r === 'unchanged') return true;
      screen.announce('Saved');
      toast('Saved', 'success');
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.code === 'flow.invalid') toast(`Not saved: ${e.message}. Fix the marked nodes.`, 'error');
      else toast(`Not saved: ${/** @type {any} */ (e).message}`, 'error');
      return false;
    }
  }

  /** Someone else saved meanwhile: keep local edits, offer to overwrite or load theirs. */
  async function conflict() {
    let theirs;
    try { theirs = (await api('GET', `/flows/${state.id}`)).body; } catch (e) { toast(String(/** @type {any} */ (e).message), 'error'); return false; }
    const same = logicOf(theirs.document) === logicOf(state.doc);
    const choice = await dialog({ title: 'This flow was changed elsewhere', cls: 'fl-dialog', body: (close) => [
      h('p', { text: `Someone saved a newer version of ${theirs.name} (rev ${theirs.rev.slice(0, 10)}) after you opened it. Your edits are still here; nothing was lost.` }),
      h('p', { class: 'fl-hint', text: same ? 'Their logic is the same as yours.' : 'Their logic differs from yours. Use Versions after saving to compare.' }),
      h('div', { class: 'dialog-actions' },
        h('button', { class: 'fl-btn', type: 'button', text: 'Keep editing', onclick: () => close('keep') }),
        h('button', { class: 'fl-btn', type: 'button', text: 'Download mine', onclick: () => downloadMine() }),
        h('button', { class: 'fl-btn', type: 'button', text: 'Load theirs (discard mine)', onclick: () => close('theirs') }),
        h('button', { class: 'fl-btn fl-primary', type: 'button', text: 'Overwrite with mine', onclick: () => close('mine') })),
    ] });
    if (choice === 'mine') { state.overwrite(theirs); return save(); }
    if (choice === 'theirs') { state.load(theirs); return true; }
    return false;
  }

  function downloadMine() {
    const blob = new Blob([JSON.stringify(state.doc, null, 2) + '\n'], { type: 'application/json' });
    const a = h('a', { href: URL.createObjectURL(blob), download: `${state.doc.name || 'flow'}.mine.flow.json` });
    document.body.append(a); a.click(); a.remove();
  }

  async function publish() {
    if (!(await save())) return;
    try {
      const r = await state.publish();
      toast(r.url ? `Published v${r.version}: ${r.method} ${r.url}` : `Published function v${r.version}`, 'success');
    } catch (e) {
      if (e instanceof ApiError && e.code === 'flow.invalid') state.setDiagnostics(e.details);
      dialog({ title: 'Not published', cls: 'fl-dialog', body: () => [errorBox(e)] });
    }
  }

  async function unpublish() {
    try {
      await state.unpublish();
      toast('Unpublished: the endpoint is no longer served.', 'success');
    } catch (e) { toast(/** @type {any} */ (e).message, 'error'); }
  }

  async function versions() {
    await showHistory(state.id, () => state.doc, async (version, andPublish) => {
      if (state.dirty() && !confirm('Rolling back replaces your unsaved edits. Continue?')) return;
      try {
        const r = await state.rollback(version, andPublish);
        toast(andPublish ? `Rolled back to v${version} and published it as v${r.published_version}` : `The draft is now v${version}. Publish to serve it.`, 'success');
      } catch (e) {
        if (e instanceof ApiError && e.code === 'flow.stale_rev') toast('The flow changed elsewhere; reload it before rolling back.', 'error');
        else dialog({ title: 'Rollback failed', cls: 'fl-dialog', body: () => [errorBox(e)] });
      }
    });
  }

  /** @param {string} text the file's content */
  async function importInto(text) {
    let flows = [];
    try { flows = (await api('GET', '/flows')).body.flows; } catch { /* the dialog reports errors itself */ }
    const target = await importDialog(text, flows, state.id);
    if (target === state.id) {
      await state.reload();
      screen.fit();
      toast('Imported into this flow', 'success');
    } else if (typeof target === 'number') {
      location.hash = `#/flows/${target}`;
    }
  }

  function exportFile() {
    exportFlow(state.id, state.record.name).catch((e) => toast(e.message, 'error'));
  }

  /** Offers the edits a previous visit left unsaved. @param {{rev: string, doc: any} | null} kept */
  async function offerStash(kept) {
    if (!kept) return;
    const choice = await dialog({ title: 'Unsaved edits', cls: 'fl-dialog', body: (close) => [
      h('p', { text: `You left ${kept.doc.name || 'this flow'} with edits that were not saved. They are kept in this browser tab.` }),
      h('div', { class: 'dialog-actions' },
        h('button', { class: 'fl-btn', type: 'button', text: 'Discard them', onclick: () => close('discard') }),
        h('button', { class: 'fl-btn fl-primary', type: 'button', text: 'Restore my edits', onclick: () => close('restore') })),
    ] });
    if (choice === 'restore') state.restoreStash(kept);
    else if (choice === 'discard') state.dropStash();
  }

  function showProblems() {
    const nodes = [...new Set(state.diagnostics.map((d) => d.node).filter(Boolean))];
    dialog({ title: 'Problems', cls: 'fl-dialog', body: (close) => [
      diagList(state.diagnostics),
      h('p', { class: 'fl-hint', text: 'Select a node marked ⚠ to see its problems next to the field.' }),
      h('div', { class: 'dialog-actions' }, nodes.map((n) =>
        h('button', { class: 'fl-btn', type: 'button', text: `Go to ${n}`, onclick: () => { close(null); state.select([n]); } }))),
    ] });
  }

  return { save, publish, unpublish, versions, importInto, exportFile, offerStash, showProblems };
}

/** @typedef {ReturnType<typeof flowActions>} FlowActions */
