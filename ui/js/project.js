// @ts-check
/**
 * The project as files, in Settings: **Export project** downloads `GET /project` (every table,
 * API group, flow, flow tests and env.json) as `sluice-project.json`; **Import project** reads that bundle,
 * or project files picked together or as a folder, asks the server for the plan
 * (`POST /project/plan`, which changes nothing) and shows it, and only **Apply**
 * (`POST /project/apply`, one transaction: all of it or nothing) changes the instance.
 */
import { api, download } from './api.js';
import { h, replace, field, icon } from './dom.js';
import { confirmDialog, toast, errorBox } from './ui.js';

const FORMAT = 'sluice.project';
const SUFFIXES = ['.table.json', '.group.json', '.flow.json', '.tests.json'];
const ENV_FILE = 'env.json';

/**
 * What the server reads, by the file's name (the last part of its path).
 * @param {string} path
 */
export function isProjectFile(path) {
  const name = path.split('/').pop() || path;
  return name === ENV_FILE || SUFFIXES.some((s) => name.endsWith(s));
}

/**
 * The path of a chosen file: its name, or for a file of a chosen folder its path inside that
 * folder (the folder's own name dropped, as `sluice export` writes a project's files).
 * @param {File} f
 */
function pathOf(f) {
  const rel = f.webkitRelativePath || '';
  return rel.includes('/') ? rel.slice(rel.indexOf('/') + 1) : (rel || f.name);
}

/**
 * @typedef {{files: Record<string, string>, format: string, version: number, source: string,
 *   ignored: string[]}} Chosen
 */

/**
 * Reads the chosen files: one `sluice-project.json` bundle as it is, otherwise every project
 * file (the rest is listed as ignored). Throws an Error with a sentence when nothing fits.
 * @param {File[]} chosen
 * @returns {Promise<Chosen>}
 */
async function readChosen(chosen) {
  if (chosen.length === 1 && !isProjectFile(pathOf(chosen[0]))) {
    const f = chosen[0];
    let doc;
    try {
      doc = JSON.parse(await f.text());
    } catch (e) {
      throw new Error(`${f.name} is not JSON: ${/** @type {Error} */ (e).message}`);
    }
    if (!doc || doc.format !== FORMAT || !doc.files || typeof doc.files !== 'object' || Array.isArray(doc.files)) {
      throw new Error(`${f.name} is not a project: choose the sluice-project.json of an export, or files ending in .table.json, .group.json, .flow.json, .tests.json, or env.json.`);
    }
    return { files: doc.files, format: doc.format, version: doc.version ?? 1, source: f.name, ignored: [] };
  }
  /** @type {Record<string, string>} */
  const files = {};
  /** @type {string[]} */
  const ignored = [];
  for (const f of chosen) {
    const path = pathOf(f);
    if (isProjectFile(path)) files[path] = await f.text();
    else ignored.push(path);
  }
  if (!Object.keys(files).length) {
    throw new Error('None of the chosen files is a project file (.table.json, .group.json, .flow.json, .tests.json or env.json).');
  }
  const n = Object.keys(files).length;
  return { files, format: FORMAT, version: 1, source: `${n} file${n === 1 ? '' : 's'}`, ignored };
}

/** @param {number} n @param {string} one @param {string} [many] */
function count(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

const ACTION_TAG = /** @type {Record<string, string>} */ ({
  create: 'tag tag-success',
  change: 'tag tag-accent',
  unchanged: 'tag',
  drop: 'tag tag-danger',
  delete: 'tag tag-danger',
  kept: 'tag',
});

const ACTION_HINT = /** @type {Record<string, string>} */ ({
  drop: 'dropped with its rows: it is not in the files',
  delete: 'deleted: it is not in the files',
  kept: 'on this instance, not in the files: left as it is',
});

/** Whether applying the report changes anything (as the server counts it). @param {any} r */
function changeCount(r) {
  const items = [...(r.tables || []), ...(r.groups || []), ...(r.flows || []), ...(r.tests || [])];
  return items.filter((i) => !['unchanged', 'kept'].includes(i.action) || i.publish).length
    + (r.env?.added?.length || 0);
}

/** One table, group or flow of the plan. @param {any} item */
function itemRow(item) {
  const hint = ACTION_HINT[item.action] || (item.file ? `from ${item.file}` : '');
  return h('li', { dataset: { name: item.name, action: item.action } },
    h('div', { class: 'grow' },
      h('div', { class: 'name', text: item.name }),
      hint ? h('div', { class: 'hint', text: hint }) : null,
      item.details?.length
        ? h('ul', { class: 'project-details' }, item.details.map((/** @type {string} */ d) => h('li', { text: d })))
        : null),
    h('span', { class: ACTION_TAG[item.action] || 'tag', text: item.action }),
    item.publish ? h('span', { class: 'tag tag-accent', text: 'publish' }) : null);
}

/** @param {string} title @param {string} id @param {any[]} items */
function itemSection(title, id, items) {
  return h('section', { class: 'project-part', id, 'aria-labelledby': `${id}-title` },
    h('h3', { id: `${id}-title`, text: `${title} (${items.length})` }),
    items.length
      ? h('ul', { class: 'list' }, items.map(itemRow))
      : h('p', { class: 'hint', text: 'None.' }));
}

/** The environment part: values are per instance, secrets never travel. @param {any} env */
function envSection(env) {
  /** @type {HTMLElement[]} */
  const rows = [];
  const line = (/** @type {string} */ name, /** @type {string} */ cls, /** @type {string} */ tag, /** @type {string} */ hint) =>
    rows.push(h('li', { dataset: { name } },
      h('div', { class: 'grow' }, h('div', { class: 'name', text: name }), h('div', { class: 'hint', text: hint })),
      h('span', { class: cls, text: tag })));
  for (const n of env?.added || []) line(n, 'tag tag-success', 'add', 'added with the value in the files');
  for (const n of env?.differs || []) line(n, 'tag', 'differs', 'this instance has another value and keeps it');
  for (const n of env?.missing_secrets || []) {
    line(n, 'tag tag-warning', 'secret missing',
      'Set this secret on this instance (Environment values and secrets, above): the files name it, but secret values never travel in files. Flows that read it fail until it is set.');
  }
  for (const n of env?.not_in_files || []) line(n, 'tag', 'kept', 'on this instance, not in the files: kept');
  return h('section', { class: 'project-part', id: 'project-env', 'aria-labelledby': 'project-env-title' },
    h('h3', { id: 'project-env-title', text: 'Environment values and secrets' }),
    rows.length ? h('ul', { class: 'list' }, rows) : h('p', { class: 'hint', text: 'None in the files or on this instance.' }));
}

/** Every problem with its file and pointer. @param {any[]} problems */
function problemsBox(problems) {
  return h('div', { class: 'error-box', id: 'project-problems', role: 'alert' },
    h('strong', { text: `${count(problems.length, 'problem')} with the files: nothing can be applied until ${problems.length === 1 ? 'it is' : 'they are'} fixed in the files.` }),
    h('ul', null, problems.map((p) => h('li', null,
      h('code', { text: p.file || '(files)' }), ' ',
      p.pointer ? h('code', { text: p.pointer }) : null, p.pointer ? ' ' : null,
      p.message || ''))));
}

/** The plan (or what was applied) part by part; with problems, only them (the server plans
 * nothing further). @param {any} r */
function reportView(r) {
  if (r.problems?.length) return [problemsBox(r.problems), skippedNote(r)];
  return [
    itemSection('Tables', 'project-tables', r.tables || []),
    itemSection('API groups', 'project-groups', r.groups || []),
    itemSection('Flows', 'project-flows', r.flows || []),
    itemSection('Flow tests', 'project-tests', r.tests || []),
    envSection(r.env),
    skippedNote(r),
  ];
}

/** Files of the bundle an import does not read (anything but project files). @param {any} r */
function skippedNote(r) {
  return r.skipped?.length
    ? h('p', { class: 'hint', id: 'project-skipped' }, 'Not read by an import: ', r.skipped.join(', '))
    : null;
}

/**
 * The Settings panel with Export project and Import project. `onApplied` runs after an apply
 * (Settings reloads its environment list).
 * @param {{onApplied?: () => void}} [opts]
 * @returns {HTMLElement}
 */
export function projectPanel({ onApplied } = {}) {
  const filesInput = /** @type {HTMLInputElement} */ (h('input', { type: 'file', id: 'project-files', name: 'project_files', multiple: true, accept: '.json,application/json' }));
  const folderInput = /** @type {HTMLInputElement} */ (h('input', { type: 'file', id: 'project-folder', name: 'project_folder', multiple: true, webkitdirectory: true }));
  const option = (/** @type {string} */ id, /** @type {string} */ label) => {
    const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id, name: id }));
    return { box, el: h('label', { class: 'check' }, box, label) };
  };
  const publish = option('project-publish', 'Publish changed flows');
  const prune = option('project-prune', 'Delete flows, groups and tests not in the files');
  const allowDrop = option('project-allow-drop', 'Allow dropping tables and fields');
  const status = h('p', { id: 'project-status', class: 'hint', role: 'status' }, 'Choose files to see what they would change.');
  const plan = h('div', { id: 'project-plan', class: 'project-plan' });
  const why = h('span', { id: 'project-apply-why', class: 'hint' });
  const applyBtn = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'btn btn-primary', id: 'project-apply', disabled: true, 'aria-describedby': 'project-apply-why' }, 'Apply'));

  /** @type {Chosen | null} */
  let chosen = null;
  /** @type {any} */
  let lastPlan = null;
  // Answers that arrive after a newer request was sent are dropped.
  let seq = 0;

  const body = () => ({
    format: chosen?.format ?? FORMAT,
    version: chosen?.version ?? 1,
    files: chosen?.files ?? {},
    allow_drop: allowDrop.box.checked,
    prune: prune.box.checked,
    publish: publish.box.checked,
  });

  const setApply = (/** @type {boolean} */ enabled, /** @type {string} */ reason) => {
    applyBtn.disabled = !enabled;
    why.textContent = reason;
  };

  const ignoredNote = () => chosen?.ignored.length
    ? h('p', { class: 'hint', id: 'project-ignored' }, `Left out (an import reads only .table.json, .group.json, .flow.json, .tests.json and env.json): ${chosen.ignored.join(', ')}`)
    : null;

  async function replan() {
    if (!chosen) return;
    const mine = ++seq;
    lastPlan = null;
    setApply(false, 'Planning…');
    status.textContent = `Planning ${chosen.source}…`;
    try {
      const r = (await api('POST', '/project/plan', { body: body() })).body;
      if (mine !== seq) return;
      lastPlan = r;
      const n = changeCount(r);
      replace(plan, ignoredNote(), reportView(r));
      if (r.problems?.length) {
        status.textContent = `The plan for ${chosen.source} has ${count(r.problems.length, 'problem')}: nothing can be applied.`;
        setApply(false, 'Fix the problems in the files first.');
      } else if (!n) {
        status.textContent = `Nothing would change: this instance already matches ${chosen.source}.`;
        setApply(false, 'Nothing to apply.');
      } else {
        status.textContent = `Plan for ${chosen.source}: ${count(n, 'change')}. Nothing has been applied yet.`;
        setApply(true, 'Applies every change in one transaction: all of them or none.');
      }
    } catch (e) {
      if (mine !== seq) return;
      status.textContent = 'The files could not be planned.';
      replace(plan, ignoredNote(), errorBox(e));
      setApply(false, '');
    }
  }

  async function choose(/** @type {HTMLInputElement} */ input, /** @type {HTMLInputElement} */ other) {
    const list = [...(input.files || [])];
    if (!list.length) return;
    other.value = '';
    seq += 1;
    chosen = null;
    lastPlan = null;
    setApply(false, '');
    try {
      chosen = await readChosen(list);
    } catch (e) {
      status.textContent = 'These files cannot be imported.';
      replace(plan, errorBox(e));
      return;
    }
    await replan();
  }

  async function apply() {
    if (!chosen || !lastPlan) return;
    const gone = [...lastPlan.tables, ...lastPlan.groups, ...lastPlan.flows, ...(lastPlan.tests || [])]
      .filter((i) => i.action === 'drop' || i.action === 'delete');
    if (gone.length) {
      const ok = await confirmDialog({
        title: 'Drop and delete?',
        message: `Applying drops or deletes ${gone.map((i) => `${i.name} (${i.action})`).join(', ')}. A dropped table's rows are lost.`,
        confirm: 'Apply',
        danger: true,
      });
      if (!ok) return;
    }
    const mine = ++seq;
    setApply(false, 'Applying…');
    status.textContent = `Applying ${chosen.source}…`;
    try {
      const r = (await api('POST', '/project/apply', { body: body() })).body;
      if (mine !== seq) return;
      lastPlan = null;
      const n = changeCount(r);
      status.textContent = `Applied ${chosen.source}: ${count(n, 'change')}.`;
      replace(plan, h('div', { class: 'success-box', id: 'project-applied', role: 'status' },
        icon('check'), ` Applied: ${count(n, 'change')}, in one transaction.`), reportView(r));
      setApply(false, 'Applied. Change an option or choose files again to plan anew.');
      toast('Project applied.', 'success');
      onApplied?.();
    } catch (e) {
      if (mine !== seq) return;
      const err = /** @type {any} */ (e);
      status.textContent = 'Nothing was applied.';
      replace(plan, err.code === 'project.invalid'
        ? problemsBox(err.details || [])
        : errorBox(err));
      setApply(false, 'Nothing was applied. Fix the files, or choose them again.');
    }
  }

  filesInput.addEventListener('change', () => choose(filesInput, folderInput));
  folderInput.addEventListener('change', () => choose(folderInput, filesInput));
  for (const o of [publish, prune, allowDrop]) o.box.addEventListener('change', () => replan());
  applyBtn.addEventListener('click', () => apply());

  const exportBtn = h('button', { type: 'button', class: 'btn btn-sm', id: 'export-project' }, icon('download'), 'Export project');
  exportBtn.addEventListener('click', async () => {
    try {
      await download('/project', 'sluice-project.json');
    } catch (e) {
      toast(/** @type {any} */ (e).message, 'error');
    }
  });

  return h('section', { class: 'panel', id: 'project', 'aria-labelledby': 'project-title' },
    h('div', { class: 'panel-head' },
      h('div', null, h('h2', { id: 'project-title', text: 'Project files' }),
        h('p', { class: 'hint', text: 'Every table, API group, flow and environment value as files, to keep in git or move to another instance. Secret values stay here: only their names are exported.' })),
      exportBtn),
    h('div', { class: 'panel-body' },
      h('h3', { id: 'project-import-title', text: 'Import project' }),
      h('p', { class: 'hint', text: 'Choose the sluice-project.json of an export, or project files (.table.json, .group.json, .flow.json, .tests.json, env.json), or a folder of them. The plan is shown first; nothing changes until you press Apply.' }),
      h('div', { class: 'project-row' },
        field('Project files', filesInput),
        field('Or a folder', folderInput)),
      h('div', { class: 'project-row', role: 'group', 'aria-labelledby': 'project-options-title' },
        h('span', { id: 'project-options-title', class: 'project-options-title', text: 'Options' }),
        publish.el, prune.el, allowDrop.el),
      status,
      plan,
      h('div', { class: 'project-row' }, applyBtn, why)));
}
