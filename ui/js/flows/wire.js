// @ts-check
/**
 * Wiring without a mouse: the Connect dialog (key W, or "Connect…" on a stack step) for one
 * node. Choose one of its output ports, then the node it leads to; Enter connects. The same
 * dialog disconnects the chosen port. Targets that would close a loop are listed but disabled.
 * Works on `FlowState` only, so both views show the result.
 */
import { h, uid } from '../dom.js';
import { dialog } from '../ui.js';
import { START, START_PORTS, makesCycle, outPorts, setWire } from './model.js';
import { summary } from './summary.js';

/**
 * Where `from.port` leads now, or ''. @param {any} doc @param {string} from @param {string} port
 */
export function target(doc, from, port) {
  if (from === START) return doc[port] || '';
  return doc.nodes[from]?.next?.[port] || '';
}

/**
 * Opens the dialog for node `from` (or the start box) and applies the choice.
 * @param {import('./state.js').FlowState} state
 * @param {string} from
 * @param {(message: string) => void} announce
 * @returns {Promise<void>}
 */
export async function connectDialog(state, from, announce) {
  const doc = state.doc;
  const node = from === START ? null : doc.nodes[from];
  if (from !== START && !node) return;
  const ports = from === START ? START_PORTS : outPorts(node, state.types);
  const fromName = from === START ? 'the request' : from;
  if (!ports.length) {
    announce(`${fromName} has no output ports: it ends the request.`);
    return;
  }
  const targets = Object.keys(doc.nodes).filter((id) => id !== from);
  const portId = uid('fl-wire-port'), toId = uid('fl-wire-to');
  const result = await dialog({
    title: `Connect ${fromName}`,
    cls: 'fl-dialog',
    body: (close) => {
      const portSel = /** @type {HTMLSelectElement} */ (h('select', { id: portId, class: 'fl-input fl-wire-port' },
        ports.map((p) => h('option', { value: p, text: target(doc, from, p) ? `${p} → ${target(doc, from, p)}` : `${p} (not connected)` }))));
      const toSel = /** @type {HTMLSelectElement} */ (h('select', { id: toId, class: 'fl-input fl-wire-to' },
        targets.map((id) => {
          const loops = makesCycle(doc, from, id);
          const n = doc.nodes[id];
          const about = summary(n, state.types.get(n.type));
          return h('option', { value: id, disabled: loops, text: `${id} (${n.type}${about ? `: ${about.slice(0, 40)}` : ''})${loops ? ' would make a loop' : ''}` });
        })));
      const disconnect = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'fl-btn fl-wire-disconnect', text: 'Disconnect',
        onclick: () => close({ port: portSel.value, to: null }) }));
      const connect = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'fl-btn fl-primary fl-wire-connect', text: 'Connect' }));
      const sync = () => {
        const now = target(doc, from, portSel.value);
        if (now && !toSel.querySelector(`option[value="${CSS.escape(now)}"]:disabled`)) toSel.value = now;
        else {
          const first = [...toSel.options].find((o) => !o.disabled);
          if (first && toSel.selectedOptions[0]?.disabled) toSel.value = first.value;
        }
        disconnect.disabled = !now;
      };
      portSel.addEventListener('change', sync);
      sync();
      if (toSel.selectedOptions[0]?.disabled || !toSel.options.length) connect.disabled = true;
      toSel.addEventListener('change', () => { connect.disabled = !!toSel.selectedOptions[0]?.disabled; });
      const form = /** @type {HTMLFormElement} */ (h('form', { class: 'fl-wire-form' },
        h('p', { class: 'fl-hint', text: 'Choose the port, then the node it leads to. Enter connects.' }),
        h('div', { class: 'fl-form-row' }, h('label', { for: portId, text: 'From port' }), portSel),
        h('div', { class: 'fl-form-row' }, h('label', { for: toId, text: 'To node' }), toSel),
        targets.length ? null : h('p', { class: 'fl-hint', text: 'There is no other node yet: add one first.' }),
        h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'fl-btn', text: 'Cancel', onclick: () => close(undefined) }), disconnect, connect)));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        if (connect.disabled || !toSel.value) return;
        close({ port: portSel.value, to: toSel.value });
      });
      // Enter on a select does not submit a form by itself.
      form.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && e.target instanceof HTMLSelectElement) { e.preventDefault(); form.requestSubmit(); }
      });
      return form;
    },
  });
  if (!result) return;
  const { port, to } = result;
  if (to && makesCycle(state.doc, from, to)) { announce(`${from} → ${to} would make a loop.`); return; }
  if (target(state.doc, from, port) === (to || '')) { announce(to ? `${fromName}.${port} already leads to ${to}` : `${fromName}.${port} is not connected`); return; }
  state.edit((d) => setWire(d, from, port, to));
  announce(to ? `Connected ${fromName}.${port} to ${to}` : `Disconnected ${fromName}.${port}`);
}
