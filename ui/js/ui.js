// @ts-check
/**
 * Toasts, dialogs, confirmations and error boxes: the one set every screen uses (tables,
 * settings, designer, flows). Builds on `dom.js`; knows nothing of any screen or of the API.
 */
import { h } from './dom.js';
import { icon } from './icons.js';

/**
 * Shows a short message in the corner. `kind`: `info`, `success` or `error`.
 * @param {string} message
 * @param {'info' | 'success' | 'error'} [kind]
 */
export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const mark = kind === 'error' ? icon('warning') : kind === 'success' ? icon('check') : null;
  const t = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, mark, h('span', { text: message }));
  box.append(t);
  setTimeout(() => t.classList.add('leaving'), kind === 'error' ? 6000 : 3000);
  setTimeout(() => t.remove(), kind === 'error' ? 6400 : 3400);
}

/**
 * Opens a modal dialog (native `<dialog>`: focus is trapped, Escape closes it). Resolves with
 * the value passed to `close`, or `undefined` when dismissed.
 * `cls` adds classes to the `<dialog>` (a screen's own styles for what it puts inside).
 * @param {{title: string, body: (close: (v?: any) => void) => (Node | string | (Node | string)[]), wide?: boolean, cls?: string}} opts
 * @returns {Promise<any>}
 */
export function dialog({ title, body, wide, cls }) {
  return new Promise((resolve) => {
    const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
    /** @type {HTMLDialogElement} */
    const dlg = /** @type {any} */ (h('dialog', { class: ['dialog', wide ? 'wide' : '', cls || ''].filter(Boolean).join(' '), 'aria-labelledby': titleId }));
    let result;
    // Resolves at once, not on the `close` event (a later task): what the choice does is
    // done before anything else runs, as the caller would expect.
    const close = (/** @type {any} */ v) => {
      result = v;
      resolve(v);
      dlg.close();
    };
    const content = body(close);
    dlg.append(
      h('header', { class: 'dialog-head' },
        h('h2', { id: titleId, text: title }),
        h('button', { class: 'btn-icon dialog-close', type: 'button', 'aria-label': 'Close', title: 'Close (Esc)', onclick: () => close(undefined) }, icon('close')),
      ),
      h('div', { class: 'dialog-body' }, content),
    );
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(result);
    });
    document.body.append(dlg);
    dlg.showModal();
    const first = /** @type {HTMLElement | null} */ (dlg.querySelector('.dialog-body input, .dialog-body select, .dialog-body textarea, .dialog-body button'));
    first?.focus();
  });
}

/**
 * Closes every open dialog as dismissed: each resolves as if its × was pressed (`undefined`,
 * `false` for a confirmation). The router calls it when the route changes (Back, a link), so
 * no dialog outlives the screen that opened it.
 */
export function closeDialogs() {
  for (const d of /** @type {NodeListOf<HTMLDialogElement>} */ (document.querySelectorAll('dialog[open]'))) d.close();
}

/**
 * Asks a yes/no question. Resolves true when confirmed.
 * @param {{title: string, message: string | Node, confirm?: string, danger?: boolean}} opts
 */
export function confirmDialog({ title, message, confirm = 'Confirm', danger = false }) {
  return dialog({
    title,
    body: (close) => [
      h('div', { class: 'confirm-message' }, message),
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => close(false) }, 'Cancel'),
        h('button', { type: 'button', class: danger ? 'btn btn-danger' : 'btn btn-primary', onclick: () => close(true) }, confirm),
      ),
    ],
  }).then((v) => v === true);
}

/**
 * Renders an API error for a form: the message and each detail.
 * @param {any} err
 */
export function errorBox(err) {
  const details = Array.isArray(err?.details) ? err.details : [];
  return h('div', { class: 'error-box', role: 'alert' },
    h('strong', { text: err?.message || String(err) }),
    details.length
      ? h('ul', null, details.slice(0, 50).map((d) => h('li', null,
          d.pointer ? h('code', { text: d.pointer }) : null,
          d.pointer ? ' ' : null,
          detailText(d))))
      : null,
  );
}

/**
 * A flow's diagnostics (`{code, pointer, message, line?, column?, severity?}`) as a list:
 * pointer, Rhai position, message, code. Warnings (`severity: "warning"`) say so and block
 * nothing; they are listed after the errors.
 * @param {any[]} diags
 */
export function diagList(diags) {
  const ordered = [...diags.filter((d) => !isWarning(d)), ...diags.filter(isWarning)];
  return h('ul', { class: 'diag-list' }, ordered.map((d) => h('li', { class: isWarning(d) ? 'is-warning' : null },
    isWarning(d) ? h('strong', { text: 'Warning: ' }) : null,
    h('code', { text: d.pointer || '/' }), ' ',
    d.line ? `line ${d.line}, column ${d.column}: ` : '', d.message || d.code,
    h('span', { class: 'muted', text: ` (${d.code})` }))));
}

/** Whether a diagnostic is a warning (the flow still compiles and publishes). */
export function isWarning(/** @type {any} */ d) {
  return d?.severity === 'warning';
}

/**
 * "2 problems", "1 warning", "1 problem, 1 warning": a count of diagnostics for a label.
 * @param {any[]} diags
 */
export function problemCount(diags) {
  const warnings = diags.filter(isWarning).length;
  const errors = diags.length - warnings;
  const part = (/** @type {number} */ n, /** @type {string} */ word) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return [errors ? part(errors, 'problem') : '', warnings ? part(warnings, 'warning') : ''].filter(Boolean).join(', ');
}

/** One `details` item of an error as a sentence. */
function detailText(/** @type {any} */ d) {
  if (typeof d !== 'object' || d === null) return String(d);
  if (d.message && d.line) return `line ${d.line}, column ${d.column}: ${d.message}`;
  if (d.message) return d.row ? `line ${d.row}${d.field ? `, ${d.field}` : ''}: ${d.message}` : d.message;
  if (Array.isArray(d.rows)) return `${d.cause || 'blocked'}${d.rows.length ? ` (rows ${d.rows.join(', ')})` : ''}`;
  if (d.reason) return d.flow ? `${d.flow}: ${d.reason}` : d.reason;
  if (d.detail) return d.detail;
  return JSON.stringify(d);
}
