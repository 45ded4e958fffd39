// @ts-check
/**
 * The input-schema builder for a flow's `input.params`, `input.query` and `input.body`: one row
 * per field (name, type, required, bounds, a "not blank" shortcut for strings, enum values, a
 * format), written as `{"type": "object", "properties": {...}, "required": [...]}`. Arrays and
 * objects keep their own schema as JSON. A schema with keywords beyond these is shown as JSON
 * with a note. For `params`, every `{param}` of the endpoint path gets a row of its own; it is
 * written once it is edited.
 */
import { h } from '../../dom.js';
import { jsonArea } from '../widgets.js';
import { withJson } from './advanced.js';

const TYPES = ['string', 'integer', 'number', 'boolean', 'array', 'object', 'any'];
const FORMATS = ['email', 'date-time', 'date', 'uuid', 'uri'];
const TOP = new Set(['type', 'properties', 'required', 'additionalProperties', 'minProperties']);
const KEYS = /** @type {Record<string, Set<string>>} */ ({
  string: new Set(['type', 'description', 'minLength', 'maxLength', 'pattern', 'enum', 'format']),
  integer: new Set(['type', 'description', 'minimum', 'maximum', 'enum']),
  number: new Set(['type', 'description', 'minimum', 'maximum', 'enum']),
  boolean: new Set(['type', 'description']),
  // No `type`: any JSON value, optionally one of a list of texts.
  any: new Set(['description', 'enum']),
});

const NULL = '{"type":"null"}';
/**
 * A property's own schema and whether null is allowed too: `{"anyOf": [schema, {"type": "null"}]}`,
 * the form generated CRUD endpoints write for optional fields.
 * @param {any} p @returns {{schema: any, nullable: boolean}}
 */
export function unwrapNullable(p) {
  if (p && typeof p === 'object' && Object.keys(p).length === 1 && Array.isArray(p.anyOf) && p.anyOf.length === 2
    && JSON.stringify(p.anyOf[1]) === NULL && p.anyOf[0] && typeof p.anyOf[0] === 'object' && !Array.isArray(p.anyOf[0])) {
    return { schema: p.anyOf[0], nullable: true };
  }
  return { schema: p, nullable: false };
}
/** The "not blank" shortcut's pattern: at least one character that is not white space. */
const NOT_BLANK = '\\S';

/**
 * Why the builder cannot show a schema, or null.
 * @param {any} v @returns {string | null}
 */
export function schemaProblem(v) {
  if (v === undefined) return null;
  if (!v || typeof v !== 'object' || Array.isArray(v)) return 'it is not an object schema.';
  const extra = Object.keys(v).filter((k) => !TOP.has(k));
  if (extra.length) return `it uses ${extra.join(', ')}.`;
  if (v.type !== undefined && v.type !== 'object') return 'its type is not object.';
  if (v.additionalProperties !== undefined && typeof v.additionalProperties !== 'boolean') return 'additionalProperties is a schema.';
  if (v.minProperties !== undefined && !Number.isInteger(v.minProperties)) return 'minProperties is not a whole number.';
  const props = v.properties ?? {};
  if (!props || typeof props !== 'object' || Array.isArray(props)) return 'properties is not an object.';
  if (v.required !== undefined && (!Array.isArray(v.required) || v.required.some((/** @type {any} */ r) => !Object.hasOwn(props, r)))) return 'required names a field that is not listed.';
  for (const [name, raw] of Object.entries(props)) {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return `${name} is not a schema.`;
    const p = unwrapNullable(raw).schema;
    const type = p.type === undefined ? 'any' : p.type;
    if (!TYPES.includes(type)) return `${name} has no single type.`;
    const allowed = KEYS[type];
    if (!allowed) continue;
    const more = Object.keys(p).filter((k) => !allowed.has(k));
    if (more.length) return `${name} uses ${more.join(', ')}.`;
    if (p.pattern !== undefined && p.pattern !== NOT_BLANK) return `${name} has a pattern of its own.`;
    if (p.format !== undefined && !FORMATS.includes(p.format)) return `${name} has the format ${p.format}.`;
    if (p.enum !== undefined && (!Array.isArray(p.enum) || p.enum.some((/** @type {any} */ e) => typeof e !== (type === 'string' || type === 'any' ? 'string' : 'number')))) return `${name} has enum values of another type.`;
  }
  return null;
}

/**
 * @param {{name: string, part: string, value: any, set: (v: any) => void, pathParams: string[]}} o
 * @returns {HTMLElement}
 */
export function inputSchemaForm(o) {
  return withJson({
    name: o.name, value: o.value, set: o.set, empty: '{"type": "object", "properties": {}}',
    canShow: schemaProblem,
    build: (value, set) => builder(o, value, set),
  });
}

/**
 * @typedef {{name: string, schema: any, nullable: boolean, required: boolean, ghost: boolean}} Row
 * @param {{name: string, part: string, pathParams: string[]}} o @param {any} value @param {(v: any) => void} set
 */
function builder(o, value, set) {
  const base = value ? structuredClone(value) : null;
  /** @type {Row[]} */
  const rows = Object.entries(base?.properties || {}).map(([name, p]) => ({ name, ...unwrapNullable(p), required: (base?.required || []).includes(name), ghost: false }));
  if (o.part === 'params') {
    for (const p of o.pathParams) if (!rows.some((r) => r.name === p)) rows.push({ name: p, schema: { type: 'string' }, nullable: false, required: false, ghost: true });
  }
  let strict = base?.additionalProperties === false;
  const write = () => {
    const live = rows.filter((r) => !r.ghost && r.name);
    if (!live.length && !base && !strict && minProps === undefined) { set(undefined); return; }
    /** @type {any} */
    const out = base ? { ...base } : { type: 'object' };
    out.properties = {};
    for (const r of live) if (!Object.hasOwn(out.properties, r.name)) out.properties[r.name] = r.nullable ? { anyOf: [r.schema, { type: 'null' }] } : r.schema;
    const req = live.filter((r) => r.required).map((r) => r.name);
    if (req.length) out.required = [...new Set(req)]; else delete out.required;
    if (strict) out.additionalProperties = false; else delete out.additionalProperties;
    if (minProps !== undefined) out.minProperties = minProps; else delete out.minProperties;
    set(out);
  };
  const list = h('div', { class: 'fm-fields' });
  const el = h('div', { class: 'fm-schema', dataset: { part: o.part } });
  const draw = (/** @type {number} */ focusRow = -1) => {
    list.replaceChildren(...rows.map((r, i) => fieldRow(o, r, i, write, () => { rows.splice(i, 1); write(); draw(); })));
    if (focusRow >= 0) /** @type {HTMLElement | null} */ (list.children[focusRow]?.querySelector('.fm-fname'))?.focus();
  };
  const strictBox = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', class: 'fm-strict', checked: strict }));
  strictBox.addEventListener('change', () => { strict = strictBox.checked; write(); });
  let minProps = base?.minProperties;
  const minBox = /** @type {HTMLInputElement} */ (h('input', { type: 'number', min: '0', step: '1', class: 'fl-input fm-num fm-minprops', value: minProps ?? '', placeholder: '0', 'aria-label': `${o.name}: at least this many fields` }));
  minBox.addEventListener('input', () => {
    if (minBox.value === '') minProps = undefined;
    else if (Number.isInteger(Number(minBox.value))) minProps = Number(minBox.value);
    else return;
    write();
  });
  el.append(list,
    h('div', { class: 'fm-group-actions' },
      h('button', { type: 'button', class: 'fl-btn fm-add fm-add-field', text: '+ Field', onclick: () => {
        let n = rows.length + 1;
        while (rows.some((r) => r.name === `field${n}`)) n += 1;
        rows.push({ name: `field${n}`, schema: { type: 'string' }, nullable: false, required: false, ghost: false });
        write(); draw(rows.length - 1);
      } }),
      h('label', { class: 'fl-check' }, strictBox, 'refuse fields not listed'),
      h('label', { class: 'fm-small fm-minprops-label' }, h('span', { text: 'at least … fields' }), minBox)));
  draw();
  if (!rows.length) list.append(h('p', { class: 'fl-hint', text: `No fields declared: the ${o.part} is not checked.` }));
  return el;
}

/**
 * @param {{name: string, part: string}} o @param {Row} r @param {number} i
 * @param {() => void} write @param {() => void} remove
 */
function fieldRow(o, r, i, write, remove) {
  const label = (/** @type {string} */ what) => `${o.name} field ${r.ghost ? r.name : i + 1}: ${what}`;
  const touch = () => { r.ghost = false; write(); };
  const name = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-fname', value: r.name, 'aria-label': label('name'), readonly: r.ghost }));
  name.spellcheck = false;
  name.addEventListener('input', () => {
    const ok = /^[A-Za-z_][A-Za-z0-9_]*$/.test(name.value);
    name.setAttribute('aria-invalid', String(!ok));
    if (ok) { r.name = name.value; touch(); }
  });
  const type = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-ftype', 'aria-label': label('type') }, ...TYPES.map((t) => new Option(t === 'any' ? 'any value' : t, t))));
  type.value = r.schema.type ?? 'any';
  const nullable = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', class: 'fm-nullable', checked: r.nullable }));
  nullable.addEventListener('change', () => { r.nullable = nullable.checked; touch(); });
  const req = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', class: 'fm-freq', checked: r.required }));
  req.addEventListener('change', () => { r.required = req.checked; touch(); });
  const details = h('div', { class: 'fm-fdetails' });
  const drawDetails = () => details.replaceChildren(...detailControls(r, label, touch));
  type.addEventListener('change', () => {
    // Keywords of the old type do not carry over; the description does.
    r.schema = { ...(type.value === 'any' ? {} : { type: type.value }), ...(r.schema.description ? { description: r.schema.description } : {}) };
    touch(); drawDetails();
  });
  drawDetails();
  return h('div', { class: r.ghost ? 'fm-row fm-frow is-ghost' : 'fm-row fm-frow', dataset: { field: r.name } },
    h('div', { class: 'fm-frow-head' }, name, type,
      r.ghost ? '' : h('button', { type: 'button', class: 'fl-btn fm-remove', text: '✕', 'aria-label': label('remove'), onclick: remove }),
      o.part === 'params' ? '' : h('span', { class: 'fm-flags' },
        h('label', { class: 'fl-check', title: 'The request must have this field' }, req, 'required'),
        h('label', { class: 'fl-check', title: 'null is accepted as well as the type' }, nullable, 'may be null'))),
    r.ghost ? h('div', { class: 'fl-help', text: 'Path parameter; declare its type to have it checked.' }) : '',
    details);
}

/**
 * The controls for the keywords of the row's type.
 * @param {Row} r @param {(what: string) => string} label @param {() => void} touch @returns {HTMLElement[]}
 */
function detailControls(r, label, touch) {
  const s = r.schema;
  /** A number input bound to one keyword; empty removes it. @param {string} key @param {string} text */
  const num = (key, text, integer = true) => {
    const inp = /** @type {HTMLInputElement} */ (h('input', { type: 'number', class: `fl-input fm-num fm-${key}`, step: integer ? '1' : 'any', value: s[key] ?? '', 'aria-label': label(text) }));
    inp.addEventListener('input', () => {
      if (inp.value === '') delete s[key];
      else if (Number.isFinite(Number(inp.value))) s[key] = Number(inp.value);
      else return;
      touch();
    });
    return h('label', { class: 'fm-small' }, h('span', { text }), inp);
  };
  const enumInput = (/** @type {boolean} */ numeric) => {
    const inp = /** @type {HTMLInputElement} */ (h('input', { class: 'fl-input fm-enum', value: Array.isArray(s.enum) ? s.enum.join(', ') : '', placeholder: 'any', 'aria-label': label('one of (comma-separated)') }));
    inp.addEventListener('input', () => {
      const parts = inp.value.split(',').map((x) => x.trim()).filter((x) => x !== '');
      if (!parts.length) delete s.enum;
      else if (numeric) { if (parts.some((x) => !Number.isFinite(Number(x)))) return; s.enum = parts.map(Number); }
      else s.enum = parts;
      touch();
    });
    return h('label', { class: 'fm-small fm-wide' }, h('span', { text: 'one of' }), inp);
  };
  switch (s.type ?? 'any') {
    case 'string': {
      const minLen = num('minLength', 'min length');
      const blank = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', class: 'fm-notblank', checked: s.pattern === NOT_BLANK }));
      blank.addEventListener('change', () => {
        if (blank.checked) { s.minLength = Math.max(1, s.minLength || 0); s.pattern = NOT_BLANK; } else { delete s.pattern; if (s.minLength === 1) delete s.minLength; }
        const m = /** @type {HTMLInputElement} */ (minLen.querySelector('input'));
        m.value = s.minLength ?? '';
        touch();
      });
      const format = /** @type {HTMLSelectElement} */ (h('select', { class: 'fl-input fm-format', 'aria-label': label('format') }, new Option('any text', ''), ...FORMATS.map((f) => new Option(f, f))));
      format.value = s.format || '';
      format.addEventListener('change', () => { if (format.value) s.format = format.value; else delete s.format; touch(); });
      return [h('label', { class: 'fl-check fm-small', title: 'minLength 1 and a pattern that needs a character other than white space' }, blank, 'not blank'),
        minLen, num('maxLength', 'max length'), h('label', { class: 'fm-small' }, h('span', { text: 'format' }), format), enumInput(false)];
    }
    case 'integer': case 'number':
      return [num('minimum', 'minimum', s.type === 'integer'), num('maximum', 'maximum', s.type === 'integer'), enumInput(true)];
    case 'boolean': return [];
    case 'any': return [enumInput(false)];
    default: {
      // Arrays and objects keep their own schema as JSON.
      const ta = jsonArea(s, (v) => { if (v && typeof v === 'object' && !Array.isArray(v)) { r.schema = { ...v, type: s.type }; touch(); } }, '{}');
      ta.setAttribute('aria-label', label(`${s.type} schema (JSON)`));
      return [ta];
    }
  }
}
