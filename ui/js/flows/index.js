// @ts-check
// Entry of the flow screens, mounted by the shell for `#/flows` (the list) and `#/flows/{id}`
// (one flow: canvas, inspector, run, history).

import { mountList } from './list.js';
import { mountFlow } from './flow.js';

let cssLoaded = false;
function loadCss() {
  if (cssLoaded || document.querySelector('link[data-flows-css]')) return;
  cssLoaded = true;
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = new URL('../../css/flows.css', import.meta.url).href;
  link.dataset.flowsCss = '';
  document.head.append(link);
}

let cleanup = () => {};

/**
 * @param {HTMLElement} el where to render
 * @param {{params?: string[] | {id?: string}, id?: string}} [ctx] route params from the shell
 *   (`params[0]` is the flow id on `#/flows/{id}`)
 */
export async function mount(el, ctx = {}) {
  loadCss();
  cleanup();
  const p = ctx.params;
  const raw = Array.isArray(p) ? p[0] : p?.id ?? ctx.id;
  const id = raw === undefined ? NaN : Number(raw);
  el.classList.add('fl-host');
  // The flow screen uses the whole area (the shell's `full` screens); the list keeps the padding.
  el.classList.toggle('full', Number.isInteger(id));
  // `#/flows/{id}/jobs/{job}/{attempt}`: the flow with that job attempt's trace on the canvas.
  const job = Array.isArray(p) && p[1] === 'jobs' ? { job: Number(p[2]), attempt: Number(p[3]) } : undefined;
  cleanup = Number.isInteger(id) ? await mountFlow(el, id, job) : await mountList(el);
  return cleanup;
}
