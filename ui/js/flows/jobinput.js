// @ts-check
/**
 * A sample input for a debug run of a flow with a trigger, shaped as the job it would get
 * (FLOW-FORMAT.md, "What a trigger flow sees"): a schedule's `{occurrence, scheduled_for}`, a
 * table trigger's `{"event": {op, table, old, new, changed}}` with a row of typed sample values,
 * or for a job the properties its `input.body` declares. Pure.
 */

/** A sample value of a table field type. @param {string} type */
function sampleOfType(type) {
  switch (type) {
    case 'integer': case 'reference': return 1;
    case 'decimal': return '1.00';
    case 'boolean': return false;
    case 'timestamp': return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    case 'date': return new Date().toISOString().slice(0, 10);
    case 'json': return {};
    case 'uuid': return '00000000-0000-4000-8000-000000000000';
    case 'email': return 'someone@example.com';
    default: return 'sample';
  }
}

/** A sample value for a JSON Schema. @param {any} s */
function sampleOfSchema(s) {
  if (!s || typeof s !== 'object') return null;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  if (Array.isArray(s.anyOf)) return sampleOfSchema(s.anyOf.find((x) => x?.type !== 'null'));
  switch (s.type) {
    case 'integer': case 'number': return typeof s.minimum === 'number' ? s.minimum : 1;
    case 'boolean': return false;
    case 'array': return [];
    case 'object': return Object.fromEntries(Object.entries(s.properties || {}).map(([k, v]) => [k, sampleOfSchema(v)]));
    case 'string': return s.format === 'date-time' ? new Date().toISOString() : s.format === 'email' ? 'someone@example.com' : 'sample';
    default: return null;
  }
}

/**
 * @param {any} doc the flow document @param {any[]} tables the managed tables (`GET /tables`)
 * @returns {any} the input, or undefined for a flow without a trigger
 */
export function sampleJobInput(doc, tables) {
  const t = doc.trigger;
  if (!t) return undefined;
  if (t.kind === 'schedule') {
    const now = new Date();
    now.setUTCMilliseconds(0);
    const utc = now.toISOString().replace('.000Z', 'Z');
    return { occurrence: utc, scheduled_for: utc };
  }
  if (t.kind === 'table') {
    const table = (tables || []).find((x) => x.name === t.table);
    const row = { id: 1 };
    for (const f of table?.fields || []) if (f.type !== 'password') /** @type {any} */ (row)[f.name] = sampleOfType(f.type);
    const op = (t.on || ['insert'])[0];
    return {
      event: {
        op, table: t.table,
        old: op === 'insert' ? null : row,
        new: op === 'delete' ? null : row,
        changed: op === 'update' ? (t.columns || []).slice(0, 1) : [],
      },
    };
  }
  return doc.input?.body ? sampleOfSchema(doc.input.body) ?? {} : {};
}
