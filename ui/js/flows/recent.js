// @ts-check
/**
 * Recent live requests of one endpoint, from the request log (`GET /request-log?flow=<name>`):
 * the newest 20 with method, path, status, time and error code, refreshable. An entry whose
 * request was captured (`settings.capture`) offers **Replay**, handed to the caller.
 */
import { h } from '../dom.js';
import { api } from '../api.js';
import { errorBox } from '../ui.js';

/** How many entries are shown. */
const SHOWN = 20;

/**
 * @param {() => any} doc the flow document (its name and settings are read on each refresh)
 * @param {(entry: any) => void} onReplay
 * @returns {{el: HTMLElement, refresh: () => Promise<void>}}
 */
export function recentRequests(doc, onReplay) {
  const body = h('div', { class: 'fl-recent-body', 'aria-live': 'polite' });
  const refreshBtn = h('button', { class: 'fl-btn', type: 'button', id: 'fl-recent-refresh', text: 'Refresh', onclick: () => refresh() });
  const el = h('section', { class: 'fl-recent', 'aria-labelledby': 'fl-recent-title' },
    h('div', { class: 'fl-recent-head' }, h('h3', { id: 'fl-recent-title', text: 'Recent live requests' }), refreshBtn),
    body);

  /** Only the answer of the latest refresh is drawn. */
  let seq = 0;
  async function refresh() {
    const d = doc();
    if (!d.endpoint) { body.replaceChildren(h('p', { class: 'fl-hint', text: 'A function has no live requests.' })); return; }
    const mine = ++seq;
    body.setAttribute('aria-busy', 'true');
    try {
      const res = await api('GET', `/request-log?flow=${encodeURIComponent(d.name)}&limit=${SHOWN}`);
      if (mine === seq) body.replaceChildren(...render(res.body.entries || [], d));
    } catch (e) {
      if (mine === seq) body.replaceChildren(errorBox(e));
    } finally {
      if (mine === seq) body.removeAttribute('aria-busy');
    }
  }

  /** @param {any[]} entries @param {any} d */
  function render(entries, d) {
    const capture = d.settings?.capture === true;
    const hint = capture
      ? h('p', { class: 'fl-hint', text: 'Requests are captured (secrets redacted), so a recorded one can be replayed on the draft. Captures start once this setting is published.' })
      : h('p', { class: 'fl-hint', text: 'To replay recorded requests, turn on “Capture requests” in the endpoint settings and publish. Errors are always logged; successful requests by sample.' });
    if (!entries.length) return [h('p', { class: 'fl-muted', text: 'No live requests logged yet.' }), hint];
    const rows = entries.map((e) => {
      const cls = e.status >= 500 ? 'fl-pill fl-pill-bad' : e.status >= 400 ? 'fl-pill fl-pill-warn' : 'fl-pill fl-pill-live';
      const at = new Date(e.at);
      return h('tr', { dataset: { id: String(e.id) } },
        h('td', null, h('time', { datetime: e.at, text: at.toLocaleString() })),
        h('td', { class: 'fl-mono', text: e.method }),
        h('td', { class: 'fl-mono fl-recent-path', text: e.path }),
        h('td', null, h('span', { class: cls, text: String(e.status) })),
        h('td', { class: 'fl-mono', text: e.error_code || '' }),
        h('td', null, e.request
          ? h('button', { class: 'fl-btn fl-recent-replay', type: 'button', text: 'Replay',
            'aria-label': `Replay ${e.method} ${e.path} (${e.status}) on the draft`, onclick: () => onReplay(e) })
          : h('span', { class: 'fl-muted', text: 'not captured' })));
    });
    return [
      h('table', { class: 'fl-table fl-recent-table' },
        h('thead', null, h('tr', null, ['Time', 'Method', 'Path', 'Status', 'Error', 'Replay'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', null, rows)),
      hint,
    ];
  }

  return { el, refresh };
}
