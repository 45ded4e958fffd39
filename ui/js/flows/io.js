// @ts-check
// Import and export of flow files. An imported file is checked by the server (validate, which
// writes nothing) and every problem is shown before the builder chooses to create or replace.

import { api, download } from '../api.js';
import { h, icon } from '../dom.js';
import { dialog, errorBox, diagList } from '../ui.js';

/** Downloads the canonical JSON of a flow. @param {number} id @param {string} name */
export function exportFlow(id, name) {
  return download(`/flows/${id}/export`, `${name}.flow.json`);
}

/**
 * A button that opens the file chooser for a `.json` file and hands its text to `onText`. The
 * input stays in the page (visually hidden inside the label), so keyboard and assistive
 * technology reach it and automation can set its file.
 * @param {string} text @param {string} title @param {(text: string) => void} onText
 */
export function fileButton(text, title, onText) {
  const input = /** @type {HTMLInputElement} */ (h('input', { type: 'file', accept: '.json,application/json', class: 'fl-file-input' }));
  input.addEventListener('change', async () => {
    const f = input.files?.[0];
    if (!f) return;
    const t = await f.text();
    input.value = '';
    onText(t);
  });
  return h('label', { class: 'fl-btn fl-file', title }, text, input);
}

/**
 * Shows an import dialog for `text`: name and path can be changed, the server's diagnostics
 * are shown as they change, and only a clean document can be written. Resolves with the id of
 * the created or replaced flow, or null.
 * @param {string} text @param {{id: number, name: string}[]} flows existing flows
 * @param {number} [replaceId] the flow being edited, offered for replacing
 */
export function importDialog(text, flows, replaceId) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return dialog({ title: 'Import a flow', cls: 'fl-dialog', body: () => [errorBox({ message: `The file is not JSON: ${/** @type {Error} */ (e).message}`, code: 'request.invalid_json' })] });
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    return dialog({ title: 'Import a flow', cls: 'fl-dialog', body: () => [errorBox({ message: 'The file is not a flow document (expected a JSON object).' })] });
  }
  return dialog({ title: 'Import a flow', cls: 'fl-dialog', body: (close) => {
    const name = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', id: 'fl-imp-name', value: doc.name ?? '', spellcheck: false }));
    const path = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input', id: 'fl-imp-path', value: doc.endpoint?.path ?? '', spellcheck: false }));
    const status = h('div', { class: 'fl-import-status', 'aria-live': 'polite' });
    const createBtn = /** @type {HTMLButtonElement} */ (h('button', { class: 'fl-btn fl-primary', type: 'button', text: 'Create new flow', disabled: true }));
    const replaceBtn = /** @type {HTMLButtonElement} */ (h('button', { class: 'fl-btn', type: 'button', text: 'Replace', disabled: true, hidden: true }));
    let ok = false;
    let seq = 0;
    const current = () => {
      const d = structuredClone(doc);
      d.name = name.value.trim();
      if (d.endpoint) d.endpoint.path = path.value.trim();
      return d;
    };
    const target = () => {
      const byName = flows.find((f) => f.name === name.value.trim());
      return byName || (replaceId !== undefined ? flows.find((f) => f.id === replaceId) : undefined);
    };
    const check = async () => {
      const mine = ++seq;
      status.replaceChildren(h('p', { class: 'fl-muted', text: 'Checking…' }));
      createBtn.disabled = replaceBtn.disabled = true;
      try {
        const r = (await api('POST', '/flows/validate', { body: { document: current() } })).body;
        if (mine !== seq) return;
        ok = r.ok;
        status.replaceChildren(r.ok
          ? h('div', null, h('p', { class: 'fl-ok' }, icon('check'), ' The flow compiles. Nothing has been written yet.'),
            r.diagnostics.length ? diagList(r.diagnostics) : null)
          : h('div', { class: 'fl-error', role: 'alert' }, h('strong', { text: `${r.diagnostics.length} problem${r.diagnostics.length === 1 ? '' : 's'}; nothing will be written until they are fixed in the file:` }), diagList(r.diagnostics)));
      } catch (e) {
        if (mine !== seq) return;
        ok = false;
        status.replaceChildren(errorBox(e));
      }
      const t = target();
      const taken = flows.some((f) => f.name === name.value.trim());
      createBtn.disabled = !ok || taken;
      createBtn.title = taken ? 'A flow with this name exists: change the name, or replace it' : '';
      replaceBtn.hidden = !t;
      replaceBtn.disabled = !ok || !t;
      if (t) replaceBtn.textContent = `Replace ${t.name}`;
    };
    let timer = 0;
    const later = () => { clearTimeout(timer); timer = window.setTimeout(check, 300); };
    name.addEventListener('input', later);
    path.addEventListener('input', later);
    const write = async (replace) => {
      createBtn.disabled = replaceBtn.disabled = true;
      try {
        if (replace) {
          const t = /** @type {any} */ (target());
          const cur = await api('GET', `/flows/${t.id}`);
          await api('PUT', `/flows/${t.id}`, { body: current(), ifMatch: cur.body.rev });
          close(t.id);
        } else {
          const r = await api('POST', '/flows', { body: current() });
          close(r.body.id);
        }
      } catch (e) {
        status.replaceChildren(errorBox(e));
        createBtn.disabled = replaceBtn.disabled = false;
      }
    };
    createBtn.addEventListener('click', () => write(false));
    replaceBtn.addEventListener('click', () => write(true));
    queueMicrotask(check);
    return [
      h('div', { class: 'fl-form-row' }, h('label', { for: 'fl-imp-name', text: 'Name' }), name),
      doc.endpoint ? h('div', { class: 'fl-form-row' }, h('label', { for: 'fl-imp-path', text: `Path (${doc.endpoint.method ?? '?'})` }), path) : '',
      status,
      h('div', { class: 'dialog-actions' }, replaceBtn, createBtn),
    ];
  } });
}
