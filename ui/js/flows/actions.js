// @ts-check
/**
 * The flow screen's commands that need the builder as well as the state: save (with the
 * conflict dialog), publish (with its note), unpublish and roll back & publish (each confirmed
 * naming the live endpoint), versions, rename, duplicate, delete, import, export, the stashed
 * edits offer and the problems list. Each calls `FlowState` operations and reports through the
 * shared toasts and dialogs; none keeps state of its own.
 */
import { api, ApiError } from '../api.js';
import { h } from '../dom.js';
import { confirmDialog, dialog, diagList, errorBox, toast } from '../ui.js';
import { showHistory } from './history.js';
import { exportFlow, importDialog } from './io.js';
import { confirmOffAir, deleteFlow, duplicateFlow, liveName, renameFlow } from './lifecycle.js';
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

  /** Saves, then asks for the version's note and publishes. */
  async function publish() {
    if (!(await save())) return;
    if (state.unchanged()) {
      toast(`Nothing changed since version ${state.record.published_version}`, 'info');
      return;
    }
    const note = await publishDialog();
    if (note === undefined) return;
    try {
      const r = await state.publish(note);
      toast(r.unchanged ? `Nothing changed: v${r.version} stays live` : r.url ? `Published v${r.version}: ${r.method} ${r.url}` : `Published function v${r.version}`, 'success');
    } catch (e) {
      if (e instanceof ApiError && e.code === 'flow.invalid') state.setDiagnostics(e.details);
      dialog({ title: 'Not published', cls: 'fl-dialog', body: () => [errorBox(e)] });
    }
  }

  /** The publish dialog: what goes live and an optional note. Resolves the note ('' for none) or undefined. */
  function publishDialog() {
    const ep = state.doc.endpoint;
    const next = (state.record.published_version || 0) + 1;
    return dialog({ title: `Publish ${state.doc.name}`, cls: 'fl-dialog', body: (close) => {
      const note = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'fl-input', id: 'fl-publish-note', rows: '3', maxlength: '500', placeholder: 'e.g. Adds the priority field' }));
      const go = (/** @type {Event} */ e) => { e.preventDefault(); close(note.value.trim()); };
      return [h('form', { class: 'fl-form', onsubmit: go },
        h('p', { text: ep ? `${ep.method} /api${ep.path} will serve this draft as version ${next}.` : `The function ${state.doc.name} will run this draft as version ${next}.` }),
        state.record.published_version ? h('p', { class: 'fl-hint', text: `It replaces the live version ${state.record.published_version} at once.` }) : '',
        h('div', { class: 'fl-form-row' }, h('label', { for: 'fl-publish-note', text: 'What changed (optional, shown in Versions)' }), note),
        h('div', { class: 'dialog-actions' },
          h('button', { class: 'fl-btn', type: 'button', text: 'Cancel', onclick: () => close(undefined) }),
          h('button', { class: 'fl-btn fl-primary', type: 'submit', id: 'fl-publish-confirm', text: 'Publish' })))];
    } });
  }

  async function unpublish() {
    const ok = await confirmOffAir(state.record, {
      title: `Unpublish ${state.record.name}?`,
      what: 'The draft and every version stay; publish again to serve it.',
      confirm: 'Unpublish',
    });
    if (!ok) return;
    try {
      await state.unpublish();
      toast('Unpublished: the endpoint is no longer served.', 'success');
    } catch (e) { toast(/** @type {any} */ (e).message, 'error'); }
  }

  async function rename() {
    // Saves the draft under the new name (other unsaved edits go with it); a refusal puts the
    // old name back and is shown in the dialog.
    const name = await renameFlow({ ...state.record, name: state.doc.name, document: state.doc }, async (next) => {
      const was = state.doc.name;
      state.change((d) => { d.name = next; });
      try {
        if ((await state.save()) === 'conflict') throw new Error('This flow was changed elsewhere: reload it before renaming.');
        return state.record;
      } catch (e) {
        state.change((d) => { d.name = was; });
        throw e;
      }
    });
    if (name) screen.announce(`Renamed to ${name}`);
  }

  async function duplicate() {
    if (state.dirty() && !(await save())) return;
    const copy = await duplicateFlow(state.record);
    if (copy) location.hash = `#/flows/${copy.id}`;
  }

  async function remove() {
    if (await deleteFlow(state.record)) {
      state.dropStash();
      location.hash = '#/flows';
    }
  }

  async function versions() {
    await showHistory(state.id, () => state.doc, async (version, andPublish) => {
      if (state.dirty() && !(await confirmDialog({ title: 'Replace unsaved edits?', message: 'Rolling back replaces your unsaved edits.', confirm: 'Roll back', danger: true }))) return;
      // Rolling back to what is live changes nothing live: no question then.
      if (andPublish && state.record.published_version && version !== state.record.published_version) {
        const ok = await confirmDialog({
          title: `Roll back to v${version} and publish?`,
          message: h('div', {},
            h('p', {}, h('strong', { class: 'fl-live-route', text: liveName(state.record) }), ` serves v${state.record.published_version} now; it will answer with v${version} at once.`),
            h('p', { text: 'The rollback is published as a new version; the history keeps every version.' })),
          confirm: 'Roll back & publish',
          danger: true,
        });
        if (!ok) return;
      }
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

  return { save, publish, unpublish, rename, duplicate, remove, versions, importInto, exportFile, offerStash, showProblems };
}

/** @typedef {ReturnType<typeof flowActions>} FlowActions */
