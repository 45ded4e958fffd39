// @ts-check
// The version list of a flow: who published what and when with the publisher's note, a
// readable diff between any two versions (or a version and the draft) computed here from
// canonical JSON, and rollback (the caller confirms a roll back & publish).

import { api } from '../api.js';
import { canonical } from './model.js';
import { diffLines, hunks } from './diff.js';
import { h } from '../dom.js';
import { dialog, errorBox } from '../ui.js';

/**
 * @param {number} id @param {() => any} draft the document being edited
 * @param {(version: number, publish: boolean) => Promise<void>} rollback
 */
export async function showHistory(id, draft, rollback) {
  let versions = [];
  try {
    versions = (await api('GET', `/flows/${id}/versions`)).body.versions;
  } catch (e) {
    return dialog({ title: 'Versions', cls: 'fl-dialog', body: () => [errorBox(e)] });
  }
  const cache = new Map();
  const docOf = async (v) => {
    if (v === 'draft') return draft();
    if (!cache.has(v)) cache.set(v, (await api('GET', `/flows/${id}/versions/${v}`)).body.document);
    return cache.get(v);
  };
  return dialog({ title: 'Versions', cls: 'fl-dialog', wide: true, body: (close) => {
    if (!versions.length) return [h('p', { class: 'fl-hint', text: 'This flow has never been published. Publishing creates version 1.' })];
    const out = h('div', { class: 'fl-diff', 'aria-live': 'polite' });
    const opts = () => [new Option('draft (unsaved edits included)', 'draft'), ...versions.map((v) => new Option(`v${v.version}`, String(v.version)))];
    const left = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input', 'aria-label': 'Compare from' }, ...opts()));
    const right = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input', 'aria-label': 'Compare to' }, ...opts()));
    const ignoreUi = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: true }));
    const strip = (d) => { if (!ignoreUi.checked || !d) return d; const { ui, ...rest } = d; return rest; };
    left.value = String(versions[0].version);
    right.value = 'draft';
    const compare = async () => {
      out.replaceChildren(h('p', { class: 'fl-muted', text: 'Comparing…' }));
      try {
        const [a, b] = await Promise.all([docOf(left.value === 'draft' ? 'draft' : Number(left.value)), docOf(right.value === 'draft' ? 'draft' : Number(right.value))]);
        out.replaceChildren(renderDiff(canonical(strip(a)), canonical(strip(b)), left.selectedOptions[0].text, right.selectedOptions[0].text));
      } catch (e) { out.replaceChildren(errorBox(e)); }
    };
    left.addEventListener('change', compare);
    right.addEventListener('change', compare);
    ignoreUi.addEventListener('change', compare);
    const rows = versions.map((v, i) => h('tr', {},
      h('td', {}, h('strong', { text: `v${v.version}` })),
      h('td', {}, h('code', { text: v.rev.slice(0, 10) })),
      h('td', { text: v.published_by || '(deleted account)' }),
      h('td', { text: new Date(v.published_at).toLocaleString() }),
      h('td', { class: 'fl-version-note', text: v.note || '' }),
      h('td', { class: 'fl-actions' },
        h('button', { class: 'fl-btn', type: 'button', text: 'Diff', 'aria-label': `Diff v${v.version} with the previous version`,
          onclick: () => { left.value = versions[i + 1] ? String(versions[i + 1].version) : String(v.version); right.value = String(v.version); compare(); } }),
        h('button', { class: 'fl-btn', type: 'button', text: 'Roll back', 'aria-label': `Roll back to v${v.version} (as the draft)`,
          onclick: async () => { close(null); await rollback(v.version, false); } }),
        h('button', { class: 'fl-btn fl-primary', type: 'button', text: 'Roll back & publish', 'aria-label': `Roll back & publish v${v.version}`,
          onclick: async () => { close(null); await rollback(v.version, true); } }))));
    queueMicrotask(compare);
    return [
      h('table', { class: 'fl-table' }, h('thead', {}, h('tr', {}, ...['Version', 'Rev', 'Published by', 'When', 'Note', ''].map((t) => h('th', { text: t })))), h('tbody', {}, ...rows)),
      h('div', { class: 'fl-diff-bar' }, h('span', { text: 'Compare' }), left, h('span', { text: 'with' }), right,
        h('label', { class: 'fl-check' }, ignoreUi, ' ignore layout')),
      out,
    ];
  } });
}

/** A unified diff with line numbers. @param {string} a @param {string} b @param {string} an @param {string} bn */
export function renderDiff(a, b, an, bn) {
  const lines = diffLines(a.split('\n'), b.split('\n'));
  const hs = hunks(lines, 3);
  if (!hs.length) return h('p', { class: 'fl-hint', text: `${an} and ${bn} are identical.` });
  const add = lines.filter((l) => l.op === '+').length, del = lines.filter((l) => l.op === '-').length;
  const table = h('table', { class: 'fl-diff-table' });
  for (const hunk of hs) {
    table.append(h('tr', { class: 'fl-diff-hunk' }, h('td', { colspan: '3', text: `@@ ${an} line ${hunk[0].a ?? '-'} · ${bn} line ${hunk[0].b ?? '-'}` })));
    for (const l of hunk) {
      table.append(h('tr', { class: l.op === '+' ? 'fl-add' : l.op === '-' ? 'fl-del' : '' },
        h('td', { class: 'fl-ln', text: l.a ? String(l.a) : '' }), h('td', { class: 'fl-ln', text: l.b ? String(l.b) : '' }),
        h('td', { class: 'fl-code-line', text: `${l.op} ${l.text}` })));
    }
  }
  return h('div', {}, h('p', { class: 'fl-muted', text: `${an} → ${bn}: ${add} line${add === 1 ? '' : 's'} added, ${del} removed` }), table);
}
