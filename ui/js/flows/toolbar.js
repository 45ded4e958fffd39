// @ts-check
/**
 * The flow screen's toolbar: back link, name and route, the saved/published pills, and the
 * buttons (undo, redo, save, run, versions, export, import, the flow menu — rename, duplicate,
 * delete —, unpublish, publish). Publish is disabled while the saved draft is the live version.
 * Renders from `FlowState` on `dirty`, `fields` and `doc`; buttons call the state or the
 * screen's actions.
 */
import { h, icon } from '../dom.js';
import { fileButton } from './io.js';
import { rowMenu } from './lifecycle.js';

/**
 * @param {import('./state.js').FlowState} state
 * @param {import('./actions.js').FlowActions & {undo: () => void, redo: () => void, toggleRun: () => void, viewSwitch?: HTMLElement}} act
 * @returns {{el: HTMLElement, runToggle: HTMLElement}}
 */
export function flowToolbar(state, act) {
  const btn = (/** @type {string} */ text, /** @type {string} */ title, /** @type {() => void} */ onclick, cls = 'fl-btn', id = undefined) =>
    h('button', { class: cls, type: 'button', text, title, onclick, id });
  const nameEl = h('h1', { class: 'fl-title', text: state.doc.name });
  const routeEl = h('span', { class: 'fl-route' });
  const stateEl = h('span', { class: 'fl-state', 'aria-live': 'polite' });
  const saveBtn = /** @type {HTMLButtonElement} */ (btn('Save', 'Save the draft (Ctrl+S)', () => act.save(), 'fl-btn', 'fl-save'));
  const unpublishBtn = btn('Unpublish', 'Stop serving this flow', () => act.unpublish(), 'fl-btn', 'fl-unpublish');
  const publishBtn = /** @type {HTMLButtonElement} */ (btn('Publish', 'Save and publish: serve this draft', () => act.publish(), 'fl-btn fl-primary', 'fl-publish'));
  const flowMenu = rowMenu('Actions: rename, duplicate or delete this flow', [
    ['Rename…', () => act.rename()], ['Duplicate…', () => act.duplicate()], ['Delete…', () => act.remove()],
  ]);
  flowMenu.id = 'fl-flow-menu';
  const runToggle = h('button', { class: 'fl-btn', type: 'button', title: 'Open the run panel', id: 'fl-run-toggle', 'aria-expanded': 'false', onclick: () => act.toggleRun() }, 'Run', icon('chevron', { size: 14 }));
  const el = h('header', { class: 'fl-toolbar' },
    h('a', { class: 'fl-back', href: '#/flows', 'aria-label': 'All endpoints', title: 'All endpoints' }, icon('back')),
    h('div', { class: 'fl-titles' }, nameEl, routeEl), stateEl, act.viewSwitch || null,
    h('div', { class: 'fl-tools', role: 'toolbar', 'aria-label': 'Flow actions' },
      h('button', { class: 'fl-btn fl-icon', type: 'button', title: 'Undo (Ctrl+Z)', 'aria-label': 'Undo', onclick: () => act.undo() }, icon('undo')), h('button', { class: 'fl-btn fl-icon', type: 'button', title: 'Redo (Ctrl+Shift+Z)', 'aria-label': 'Redo', onclick: () => act.redo() }, icon('redo')),
      saveBtn, runToggle, btn('Versions', 'Published versions, diff and rollback', () => act.versions(), 'fl-btn', 'fl-versions'),
      btn('Export', 'Download the canonical JSON file', () => act.exportFile(), 'fl-btn', 'fl-export'),
      fileButton('Import…', 'Replace this flow (or create one) from a JSON file', (text) => act.importInto(text)),
      flowMenu, unpublishBtn, publishBtn));

  const refresh = () => {
    const dirty = state.dirty();
    const pub = state.record.published_version;
    routeEl.textContent = routeText(state.doc);
    stateEl.replaceChildren(
      h('span', { class: pub ? 'fl-pill fl-pill-live' : 'fl-pill', text: pub ? `published v${pub}` : 'draft only' }),
      dirty ? h('span', { class: 'fl-pill fl-pill-dirty', text: 'unsaved changes' }) : '');
    saveBtn.disabled = !dirty;
    unpublishBtn.hidden = !pub;
    const unchanged = state.unchanged();
    publishBtn.disabled = unchanged;
    publishBtn.title = unchanged ? `Nothing changed since version ${pub}` : 'Save and publish: serve this draft';
  };
  state.on('dirty', refresh);
  state.on('fields', () => { nameEl.textContent = state.doc.name || '(unnamed)'; refresh(); });
  refresh();
  return { el, runToggle };
}

/** What runs the flow, in the toolbar under its name. @param {any} doc */
function routeText(doc) {
  const t = doc.trigger;
  if (doc.endpoint) return `${doc.endpoint.method} /api${doc.endpoint.path}`;
  if (t?.kind === 'schedule') return `schedule · ${t.cron || '?'} (${t.timezone || '?'})`;
  if (t?.kind === 'table') return `on ${(t.on || []).join(', ') || '?'} of ${t.table || '?'}`;
  if (t?.kind === 'job') return 'background job';
  return 'function';
}
