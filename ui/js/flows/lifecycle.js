// @ts-check
/**
 * The lifecycle of a flow as dialogs: duplicate (name and path suggested by the server and
 * editable), rename (other flows' drafts that call a renamed function follow), delete, and the
 * confirmations that name a live endpoint before anything takes it off the air. Used by the
 * endpoint list's row menu and by the flow screen; each resolves what happened and reports
 * through the shared dialogs and toasts.
 */
import { api } from '../api.js';
import { h } from '../dom.js';
import { confirmDialog, dialog, errorBox, toast } from '../ui.js';

/**
 * A flow as the list or `GET /flows/{id}` gives it.
 * @typedef {{id: number, name: string, published_version?: number | null, live_route?: string | null, method?: string | null, path?: string | null, document?: any}} FlowRef
 */

/** What a live flow serves, for a sentence: `GET /api/todos/{id}` or `the function price`. @param {FlowRef} f */
export function liveName(f) {
  const route = f.live_route || (f.method ? `${f.method} /api${f.path}` : `function ${f.name}`);
  return route.startsWith('function ') ? `The function ${route.slice(9)}` : route;
}

/**
 * Asks before a live flow stops being served. Resolves true at once for a flow that is not
 * published (nothing live to lose).
 * @param {FlowRef} f @param {{title: string, what: string, confirm: string}} opts
 */
export function confirmOffAir(f, { title, what, confirm }) {
  if (!f.published_version) return Promise.resolve(true);
  const message = h('div', {},
    h('p', {}, h('strong', { class: 'fl-live-route', text: liveName(f) }), ` is live (v${f.published_version}) and will stop answering.`),
    h('p', { text: what }));
  return confirmDialog({ title, message, confirm, danger: true });
}

/**
 * Deletes a flow after a confirmation (naming its live route when it is published). Resolves
 * true when it was deleted.
 * @param {FlowRef} f
 */
export async function deleteFlow(f) {
  const ok = f.published_version
    ? await confirmOffAir(f, { title: `Delete ${f.name}?`, what: `Deleting ${f.name} also deletes its draft and every published version. This cannot be undone.`, confirm: 'Delete and stop serving' })
    : await confirmDialog({ title: `Delete ${f.name}?`, message: `The draft ${f.name} is deleted. It was never published, so nothing live changes.`, confirm: 'Delete', danger: true });
  if (!ok) return false;
  try {
    await api('DELETE', `/flows/${f.id}`);
  } catch (e) {
    await dialog({ title: 'Not deleted', cls: 'fl-dialog', body: () => [errorBox(e)] });
    return false;
  }
  toast(`Deleted ${f.name}`, 'success');
  return true;
}

/**
 * Copies a flow as a new draft; the builder may change the suggested name and path. Resolves
 * the new flow's record, or undefined when cancelled.
 * @param {FlowRef} f
 */
export async function duplicateFlow(f) {
  let suggested;
  try {
    suggested = (await api('GET', `/flows/${f.id}/duplicate`)).body;
  } catch (e) {
    return dialog({ title: 'Duplicate', cls: 'fl-dialog', body: () => [errorBox(e)] });
  }
  const copy = await dialog({ title: `Duplicate ${f.name}`, cls: 'fl-dialog', body: (close) => {
    const name = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', id: 'fl-dup-name', required: true, spellcheck: false, value: suggested.name }));
    const path = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', id: 'fl-dup-path', required: true, spellcheck: false, value: suggested.path || '' }));
    const out = h('div', { 'aria-live': 'polite' });
    const go = async (/** @type {Event} */ e) => {
      e.preventDefault();
      /** @type {any} */
      const body = { name: name.value.trim() };
      if (suggested.path) body.path = path.value.trim();
      try { close((await api('POST', `/flows/${f.id}/duplicate`, { body })).body); } catch (err) { out.replaceChildren(errorBox(err)); }
    };
    return [h('form', { class: 'fl-form', onsubmit: go },
      h('p', { class: 'fl-hint', text: 'The copy is a new draft: nothing is published until you publish it.' }),
      h('div', { class: 'fl-form-row' }, h('label', { for: 'fl-dup-name', text: 'Name' }), name),
      suggested.path ? h('div', { class: 'fl-form-row' }, h('label', { for: 'fl-dup-path', text: 'Path (under /api)' }), path) : '',
      out,
      h('div', { class: 'dialog-actions' },
        h('button', { class: 'fl-btn', type: 'button', text: 'Cancel', onclick: () => close(undefined) }),
        h('button', { class: 'fl-btn fl-primary', type: 'submit', text: 'Duplicate' })))];
  } });
  if (copy) toast(`Duplicated as ${copy.name} (a draft)`, 'success');
  return copy;
}

/**
 * Asks for a new name. `save(name)` does the rename (the list saves the stored draft; the flow
 * screen saves its own) and throws the API error; resolves the new name, or undefined.
 * @param {FlowRef} f @param {(name: string) => Promise<any>} save resolves the PUT's answer
 */
export async function renameFlow(f, save) {
  const isFunction = !(f.method || f.document?.endpoint);
  const answer = await dialog({ title: `Rename ${f.name}`, cls: 'fl-dialog', body: (close) => {
    const name = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', id: 'fl-rename-name', required: true, spellcheck: false, value: f.name, pattern: '[a-z][a-z0-9_]*', maxlength: '63' }));
    const out = h('div', { 'aria-live': 'polite' });
    const go = async (/** @type {Event} */ e) => {
      e.preventDefault();
      const next = name.value.trim();
      if (next === f.name) return close(undefined);
      try { close(await save(next)); } catch (err) { out.replaceChildren(errorBox(err)); }
    };
    return [h('form', { class: 'fl-form', onsubmit: go },
      h('p', { class: 'fl-hint', text: isFunction
        ? 'Other flows call a function by its name: their drafts are changed to call the new name. Publish the function, then them.'
        : 'The name is also the export file name. The route stays the same.' }),
      h('div', { class: 'fl-form-row' }, h('label', { for: 'fl-rename-name', text: 'New name (lower case, digits, _)' }), name),
      out,
      h('div', { class: 'dialog-actions' },
        h('button', { class: 'fl-btn', type: 'button', text: 'Cancel', onclick: () => close(undefined) }),
        h('button', { class: 'fl-btn fl-primary', type: 'submit', text: 'Rename' })))];
  } });
  if (!answer) return undefined;
  const callers = answer.rewritten_callers || [];
  toast(callers.length ? `Renamed to ${answer.name}; now calling it: ${callers.join(', ')}` : `Renamed to ${answer.name}`, 'success');
  return answer.name;
}

/** Renames the stored draft of a flow (the list's rename). @param {number} id @param {string} name */
export async function renameStored(id, name) {
  const r = await api('GET', `/flows/${id}`);
  const doc = { ...r.body.document, name };
  return (await api('PUT', `/flows/${id}`, { body: doc, ifMatch: r.body.rev })).body;
}

/**
 * A small disclosure menu of actions (a button that shows a list of buttons). Escape, a choice,
 * a click elsewhere or scrolling closes it; Escape and a choice give focus back to its button.
 * The list is placed `fixed` under the button, so a container that clips (the list's rounded
 * box) cannot hide it.
 * @param {string} label the button's accessible name (starts with its visible text)
 * @param {[string, () => void][]} items
 */
export function rowMenu(label, items) {
  const menuId = `fl-menu-${Math.random().toString(36).slice(2)}`;
  const toggle = /** @type {HTMLButtonElement} */ (h('button', { class: 'fl-btn fl-row-menu', type: 'button', 'aria-expanded': 'false', 'aria-controls': menuId, 'aria-label': label, text: 'Actions' }));
  const list = h('div', { class: 'fl-menu', id: menuId, hidden: true },
    ...items.map(([text, run]) => {
      const item = h('button', { class: 'fl-btn fl-menu-item', type: 'button', text, onclick: () => { close(); run(); } });
      item.style.display = 'block';
      item.style.width = '100%';
      item.style.textAlign = 'left';
      return item;
    }));
  Object.assign(list.style, {
    position: 'fixed', zIndex: '20', minWidth: '9rem', padding: '4px',
    background: 'var(--fl-panel, Canvas)', border: '1px solid var(--border, GrayText)', borderRadius: 'var(--radius, 6px)',
  });
  const wrap = h('div', { class: 'fl-menu-wrap' }, toggle, list);
  const outside = (/** @type {Event} */ e) => { if (!wrap.contains(/** @type {Node} */ (e.target))) close(false); };
  const onScroll = () => close(false);
  const close = (refocus = true) => {
    if (list.hidden) return;
    list.hidden = true;
    toggle.setAttribute('aria-expanded', 'false');
    document.removeEventListener('pointerdown', outside, true);
    window.removeEventListener('scroll', onScroll, true);
    if (refocus) toggle.focus();
  };
  const open = () => {
    const r = toggle.getBoundingClientRect();
    list.style.top = `${Math.round(r.bottom + 2)}px`;
    list.style.right = `${Math.round(document.documentElement.clientWidth - r.right)}px`;
    list.hidden = false;
    toggle.setAttribute('aria-expanded', 'true');
    document.addEventListener('pointerdown', outside, true);
    window.addEventListener('scroll', onScroll, true);
    /** @type {HTMLElement | null} */ (list.querySelector('button'))?.focus();
  };
  toggle.addEventListener('click', () => (list.hidden ? open() : close()));
  wrap.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !list.hidden) { e.stopPropagation(); close(); } });
  // Tabbing out of the menu closes it.
  wrap.addEventListener('focusout', (e) => {
    const to = /** @type {Node | null} */ (e.relatedTarget);
    if (to && !wrap.contains(to)) close(false);
  });
  return wrap;
}
