// @ts-check
// Small DOM helpers shared by the flow screens: element building, modal dialogs, toasts.

/** @param {string} tag @param {Record<string, any>} [attrs] @param {...(Node|string|null|undefined|false)} kids */
export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else if (k in e && typeof v !== 'string') /** @type {any} */ (e)[k] = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids) if (k !== null && k !== undefined && k !== false) e.append(k);
  return e;
}

/**
 * A modal dialog; resolves with the value passed to `close`.
 * @param {string} title @param {(close: (v: any) => void, dialog: HTMLDialogElement) => (Node|string)[]} body
 * @param {string} [cls]
 * @returns {Promise<any>}
 */
export function dialog(title, body, cls = '') {
  return new Promise((resolve) => {
    const d = /** @type {HTMLDialogElement} */ (el('dialog', { class: `fl-dialog ${cls}`, 'aria-label': title }));
    let done = false;
    const close = (v) => { if (done) return; done = true; d.close(); d.remove(); resolve(v); };
    d.addEventListener('cancel', (e) => { e.preventDefault(); close(undefined); });
    const head = el('header', { class: 'fl-dialog-head' }, el('h2', { text: title }),
      el('button', { class: 'fl-icon-btn', type: 'button', 'aria-label': 'Close', text: '✕', onclick: () => close(undefined) }));
    d.append(head, ...body(close, d));
    document.body.append(d);
    d.showModal();
  });
}

/** @param {string} msg @param {'info'|'error'|'ok'} [kind] */
export function toast(msg, kind = 'info') {
  let host = document.getElementById('fl-toasts');
  if (!host) {
    host = el('div', { id: 'fl-toasts', class: 'fl-toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(host);
  }
  const t = el('div', { class: `fl-toast fl-toast-${kind}`, text: msg });
  host.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}

/** A list of diagnostics as readable rows. @param {any[]} diags */
export function diagList(diags) {
  return el('ul', { class: 'fl-diag-list' }, ...diags.map((d) => el('li', {},
    el('code', { text: d.pointer || '/' }), ' ',
    d.line ? `line ${d.line}, column ${d.column}: ` : '', d.message || d.code,
    el('span', { class: 'fl-muted', text: ` (${d.code})` }))));
}

/** An error from the api as a readable message, with diagnostics when there are some. @param {any} e */
export function errorView(e) {
  const box = el('div', { class: 'fl-error', role: 'alert' }, el('strong', { text: e?.message || String(e) }),
    e?.code ? el('span', { class: 'fl-muted', text: ` (${e.code})` }) : null);
  if (Array.isArray(e?.details) && e.details.length) box.append(diagList(e.details));
  return box;
}
