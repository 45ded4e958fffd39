// @ts-check
/**
 * The minimap: a small overview in the canvas's corner, shown while the flow is larger than
 * the view. Nodes are boxes, the view is a rectangle; a click or a drag on it pans the canvas
 * there. It repeats what the canvas shows, so it is hidden from assistive technology and never
 * takes focus (the canvas's nodes are reachable with Tab, and Fit shows the start).
 */
import { START } from './model.js';

const SVG = 'http://www.w3.org/2000/svg';
/** The minimap's size in pixels (canvas.css gives the same). */
const W = 180, H = 120, PAD = 6;

export class Minimap {
  /** @param {import('./canvas.js').Canvas} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    this.el = /** @type {SVGSVGElement} */ (document.createElementNS(SVG, 'svg'));
    this.el.classList.add('fl-minimap');
    this.el.setAttribute('aria-hidden', 'true');
    this.el.setAttribute('focusable', 'false');
    this.el.setAttribute('width', String(W));
    this.el.setAttribute('height', String(H));
    this.nodes = document.createElementNS(SVG, 'g');
    this.view = document.createElementNS(SVG, 'rect');
    this.view.classList.add('fl-mini-view');
    this.el.append(this.nodes, this.view);
    /** World → minimap: scale and offset of the last drawing. */
    this.map = { s: 1, ox: 0, oy: 0 };
    this.frame = 0;
    this.dragging = false;
    canvas.root.append(this.el);
    canvas.onView = () => { if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); }); };
    this.el.addEventListener('pointerdown', (e) => this.down(e));
    this.draw();
  }

  /** Redraws from the canvas: hidden while every node is in view. */
  draw() {
    const c = this.canvas;
    const boxes = c.boxes();
    const v = c.viewBox();
    const inView = (/** @type {{x: number, y: number, w: number, h: number}} */ b) => b.x >= v.x && b.y >= v.y && b.x + b.w <= v.x + v.w && b.y + b.h <= v.y + v.h;
    const show = boxes.length > 0 && v.w > 0 && !boxes.every(inView);
    this.el.classList.toggle('is-shown', show);
    c.root.dataset.minimap = String(show);
    if (!show) return;
    // While dragging on it, the scale stays, so the map does not move under the pointer.
    if (!this.dragging) {
      let x0 = Math.min(v.x, ...boxes.map((b) => b.x)), y0 = Math.min(v.y, ...boxes.map((b) => b.y));
      const x1 = Math.max(v.x + v.w, ...boxes.map((b) => b.x + b.w)), y1 = Math.max(v.y + v.h, ...boxes.map((b) => b.y + b.h));
      const sc = Math.min((W - 2 * PAD) / (x1 - x0), (H - 2 * PAD) / (y1 - y0));
      // Centre the drawing in the box.
      x0 -= ((W - 2 * PAD) / sc - (x1 - x0)) / 2;
      y0 -= ((H - 2 * PAD) / sc - (y1 - y0)) / 2;
      this.map = { s: sc, ox: PAD - x0 * sc, oy: PAD - y0 * sc };
    }
    const { s } = this.map;
    const rects = boxes.map((b) => {
      const r = document.createElementNS(SVG, 'rect');
      r.setAttribute('x', (b.x * s + this.map.ox).toFixed(1));
      r.setAttribute('y', (b.y * s + this.map.oy).toFixed(1));
      r.setAttribute('width', Math.max(2, b.w * s).toFixed(1));
      r.setAttribute('height', Math.max(2, b.h * s).toFixed(1));
      r.classList.add('fl-mini-node');
      if (b.id === START) r.classList.add('is-start');
      if (c.selection.has(b.id)) r.classList.add('is-selected');
      return r;
    });
    this.nodes.replaceChildren(...rects);
    this.view.setAttribute('x', (v.x * s + this.map.ox).toFixed(1));
    this.view.setAttribute('y', (v.y * s + this.map.oy).toFixed(1));
    this.view.setAttribute('width', (v.w * s).toFixed(1));
    this.view.setAttribute('height', (v.h * s).toFixed(1));
  }

  /** A press (and drag) centres the canvas's view on the point under the pointer. @param {PointerEvent} e */
  down(e) {
    if (e.button !== 0) return;
    e.stopPropagation();
    e.preventDefault();
    const go = (/** @type {PointerEvent} */ ev) => {
      const r = this.el.getBoundingClientRect();
      const { s, ox, oy } = this.map;
      this.canvas.centerOn((ev.clientX - r.left - ox) / s, (ev.clientY - r.top - oy) / s);
    };
    go(e);
    this.dragging = true;
    const id = e.pointerId;
    const move = (/** @type {PointerEvent} */ ev) => { if (ev.pointerId === id) go(ev); };
    const up = (/** @type {PointerEvent} */ ev) => {
      if (ev.pointerId !== id) return;
      this.dragging = false;
      this.draw();
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
      window.removeEventListener('pointercancel', up);
    };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
    window.addEventListener('pointercancel', up);
  }
}
