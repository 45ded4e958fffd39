// @ts-check
/**
 * Settings: environment values and secrets (secret values are write-only: the server never
 * sends them back), API groups with their CORS rules, token signing key rotation, admin API
 * tokens, and the project as files (export and import, `project.js`).
 */
import { api, ApiError } from './api.js';
import { h, replace, field, icon } from './dom.js';
import { dialog, confirmDialog, toast, errorBox } from './ui.js';
import { groupEditor } from './flows/forms/cors.js';
import { projectPanel } from './project.js';

const ENV_NAME_RE = /^[A-Z][A-Z0-9_]{0,62}$/;

/**
 * @param {HTMLElement} el
 * @param {any} _ctx
 */
export async function mount(el, _ctx) {
  const env = h('section', { class: 'panel', 'aria-labelledby': 'env-title' });
  const tokens = h('section', { class: 'panel', 'aria-labelledby': 'tokens-title' });
  const cors = h('section', { class: 'panel', 'aria-labelledby': 'cors-title' });
  const keys = h('section', { class: 'panel', 'aria-labelledby': 'keys-title' });
  replace(el,
    h('div', { class: 'page-head' },
      h('div', null, h('h1', { text: 'Settings' }), h('p', { class: 'sub', text: 'Configuration your endpoints read, and access to this instance.' }))),
    env, tokens, cors, keys, projectPanel({ onApplied: () => renderEnv(env) }));
  await Promise.all([renderEnv(env), renderTokens(tokens), renderCors(cors), renderKeys(keys)]);
}

// ---------- environment ----------

async function renderEnv(/** @type {HTMLElement} */ box) {
  const res = await api('GET', '/env');
  const entries = res.body.env || [];
  const list = entries.length
    ? h('ul', { class: 'list', id: 'env-list' }, entries.map((/** @type {any} */ e) => h('li', { dataset: { name: e.name } },
        h('div', { class: 'grow' },
          h('div', { class: 'name', text: e.name }),
          e.secret
            ? h('div', { class: 'hint' }, 'Secret · value hidden · read with ', h('code', { text: `secret("${e.name}")` }))
            : h('div', { class: 'hint mono', text: e.value })),
        e.secret ? h('span', { class: 'tag tag-warning', text: 'secret' }) : h('span', { class: 'tag', text: `env.${e.name}` }),
        h('button', { type: 'button', class: 'btn btn-sm', onclick: () => editEnv(box, e) }, e.secret ? 'Replace' : 'Edit'),
        h('button', { type: 'button', class: 'btn-icon', 'aria-label': `Delete ${e.name}`, onclick: () => deleteEnv(box, e.name) }, icon('trash')))))
    : h('div', { class: 'empty', id: 'env-list' }, h('p', { text: 'No values yet. Add API keys as secrets and settings as plain values.' }));
  replace(box,
    h('div', { class: 'panel-head' },
      h('div', null, h('h2', { id: 'env-title', text: 'Environment values and secrets' }),
        h('p', { class: 'hint', text: 'Flows read plain values as env.NAME and secrets with secret("NAME"). Secret values are never shown again.' })),
      h('button', { type: 'button', class: 'btn btn-primary btn-sm', id: 'add-env', onclick: () => editEnv(box, null) }, icon('plus'), 'Add value')),
    list);
}

/**
 * @param {HTMLElement} box
 * @param {{name: string, secret: boolean, value?: string} | null} entry
 */
async function editEnv(box, entry) {
  const name = h('input', { type: 'text', name: 'env_name', value: entry?.name || '', placeholder: 'STRIPE_KEY', autocomplete: 'off', spellcheck: 'false', readonly: !!entry });
  const secret = h('input', { type: 'checkbox', name: 'env_secret', checked: entry ? entry.secret : true });
  // A secret's value never comes back, so the field starts empty and is a password input.
  const value = h('textarea', { name: 'env_value', rows: '3', spellcheck: 'false', autocomplete: 'off' });
  if (entry && !entry.secret) /** @type {HTMLTextAreaElement} */ (value).value = entry.value || '';
  const problems = h('div');
  const saved = await dialog({
    title: entry ? `Edit ${entry.name}` : 'Add a value',
    body: (close) => {
      const form = h('form', { novalidate: true },
        field('Name', name, 'A–Z, 0–9 and _, starting with a letter.'),
        field('Value', value, entry?.secret ? 'Enter a new value to replace the secret. The current one is not shown.' : undefined),
        h('label', { class: 'check' }, secret, 'Secret (write-only: never shown, traced or exported)'),
        problems,
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'),
          h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save')));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const n = /** @type {HTMLInputElement} */ (name).value.trim();
        if (!ENV_NAME_RE.test(n)) {
          replace(problems, errorBox({ message: 'Names are A–Z, 0–9 and _, starting with a letter.' }));
          return;
        }
        try {
          await api('PUT', `/env/${encodeURIComponent(n)}`, {
            body: { value: /** @type {HTMLTextAreaElement} */ (value).value, secret: /** @type {HTMLInputElement} */ (secret).checked },
          });
          close(n);
        } catch (e) {
          replace(problems, errorBox(e));
        }
      });
      return form;
    },
  });
  if (saved) {
    toast(`${saved} saved.`, 'success');
    await renderEnv(box);
  }
}

async function deleteEnv(/** @type {HTMLElement} */ box, /** @type {string} */ name) {
  const ok = await confirmDialog({ title: `Delete ${name}?`, message: 'Flows that read it will fail until it is added again.', confirm: 'Delete', danger: true });
  if (!ok) return;
  try {
    await api('DELETE', `/env/${encodeURIComponent(name)}`);
    toast(`${name} deleted.`, 'success');
  } catch (e) {
    toast(/** @type {any} */ (e).message, 'error');
  }
  await renderEnv(box);
}

// ---------- admin API tokens ----------

async function renderTokens(/** @type {HTMLElement} */ box) {
  const res = await api('GET', '/api-tokens');
  const tokens = res.body.tokens || [];
  replace(box,
    h('div', { class: 'panel-head' },
      h('div', null, h('h2', { id: 'tokens-title', text: 'Admin API tokens' }),
        h('p', { class: 'hint', text: 'For the sluice CLI, CI and scripts: send as Authorization: Bearer <token> to /_/api/v1.' })),
      h('button', { type: 'button', class: 'btn btn-primary btn-sm', id: 'add-token', onclick: () => createToken(box) }, icon('key'), 'Create token')),
    tokens.length
      ? h('ul', { class: 'list', id: 'token-list' }, tokens.map((/** @type {any} */ t) => h('li', null,
          h('div', { class: 'grow' },
            h('div', { style: null }, h('strong', { text: t.name })),
            h('div', { class: 'hint' },
              h('code', { text: `${t.prefix}…` }),
              ` · created ${fmtDate(t.created_at)}${t.created_by ? ` by ${t.created_by}` : ''} · ${t.last_used_at ? `last used ${fmtDate(t.last_used_at)}` : 'never used'}`)),
          h('button', { type: 'button', class: 'btn btn-sm', onclick: () => revokeToken(box, t) }, 'Revoke'))))
      : h('div', { class: 'empty', id: 'token-list' }, h('p', { text: 'No tokens. Create one for each script or CI job, so each can be revoked alone.' })));
}

async function createToken(/** @type {HTMLElement} */ box) {
  const name = h('input', { type: 'text', name: 'token_name', placeholder: 'CI deploy', autocomplete: 'off' });
  const problems = h('div');
  const created = await dialog({
    title: 'Create an admin API token',
    body: (close) => {
      const form = h('form', { novalidate: true },
        field('Name', name, 'What uses it, so you know what to revoke later.'),
        problems,
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'),
          h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create')));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        try {
          const res = await api('POST', '/api-tokens', { body: { name: /** @type {HTMLInputElement} */ (name).value } });
          close(res.body);
        } catch (e) {
          replace(problems, errorBox(e));
        }
      });
      return form;
    },
  });
  if (!created) return;
  await renderTokens(box);
  await dialog({
    title: 'Copy your new token',
    body: (close) => {
      const code = h('code', { class: 'token-value', text: created.token });
      return [
        h('p', { class: 'hint', text: 'This is the only time the token is shown. Store it in your CI secrets or password manager.' }),
        h('div', { class: 'secret-once', style: null }, code,
          h('button', { type: 'button', class: 'btn btn-sm', onclick: async () => {
            try { await navigator.clipboard.writeText(created.token); toast('Copied.', 'success'); } catch { toast('Select the token and copy it.', 'info'); }
          } }, 'Copy')),
        h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'btn btn-primary', onclick: () => close() }, 'Done')),
      ];
    },
  });
}

async function revokeToken(/** @type {HTMLElement} */ box, /** @type {any} */ t) {
  const ok = await confirmDialog({ title: `Revoke “${t.name}”?`, message: 'Anything using this token loses access at once.', confirm: 'Revoke', danger: true });
  if (!ok) return;
  try {
    await api('DELETE', `/api-tokens/${t.id}`);
    toast('Token revoked.', 'success');
  } catch (e) {
    toast(/** @type {any} */ (e).message, 'error');
  }
  await renderTokens(box);
}

// ---------- API groups and their CORS ----------

/** The editable part of a group, as `PUT /groups/{name}` takes it. */
function editable(/** @type {any} */ g) {
  const { name, base_path, enabled, description, cors, rate_limit } = g;
  return { name, base_path, enabled, description, cors, rate_limit };
}

async function renderCors(/** @type {HTMLElement} */ box) {
  const head = h('div', { class: 'panel-head' },
    h('div', null, h('h2', { id: 'cors-title', text: 'API groups and CORS' }),
      h('p', { class: 'hint', text: 'A group gives its endpoints a base path under /api, an on/off switch, CORS rules (which browser origins may call them) and rate limits.' })));
  let groups;
  try {
    const res = await api('GET', '/groups');
    groups = res.body.groups || [];
  } catch (e) {
    const unavailable = e instanceof ApiError && (e.status === 404 || e.status === 405);
    replace(box, head, h('div', { class: 'panel-body' },
      h('p', { class: 'notice', id: 'cors-unavailable', text: unavailable
        ? 'API groups are not available on this server, so CORS cannot be set here.'
        : `API groups could not be loaded: ${/** @type {any} */ (e).message}` })));
    return;
  }
  head.append(h('button', { type: 'button', class: 'btn btn-primary btn-sm', id: 'add-group', onclick: () => editGroup(box, null) }, icon('plus'), 'New group'));
  replace(box, head, h('ul', { class: 'list', id: 'cors-list' }, groups.map((/** @type {any} */ g) => {
    const origins = g.cors && g.cors.allowed_origins;
    const where = `/api${g.base_path || ''}/…`;
    return h('li', { dataset: { name: g.name } },
      h('div', { class: 'grow' },
        h('div', { class: 'name', text: `${g.name}  ·  ${where}` }),
        h('div', { class: 'hint', text: origins && origins.length ? `CORS: ${origins.join(', ')}` : 'CORS off: same-origin pages only' })),
      g.enabled ? h('span', { class: 'tag tag-success', text: 'on' }) : h('span', { class: 'tag', text: 'off' }),
      h('button', { type: 'button', class: 'btn btn-sm', onclick: () => editGroup(box, g) }, 'Edit'),
      g.name === 'default' ? null : h('button', { type: 'button', class: 'btn-icon', 'aria-label': `Delete group ${g.name}`, onclick: () => deleteGroup(box, g) }, icon('trash')));
  })));
}

/**
 * Creates (`group` null) or edits a group with the group form (`flows/forms/cors.js`; its JSON
 * toggle shows the documented shape).
 * @param {HTMLElement} box
 * @param {any} group
 */
async function editGroup(box, group) {
  const start = group ? editable(group) : {
    name: '', base_path: '', enabled: true, description: '', cors: null, rate_limit: null,
  };
  const editor = groupEditor(start, !group);
  const problems = h('div');
  const saved = await dialog({
    title: group ? `Group ${group.name}` : 'New API group',
    body: (close) => {
      const form = h('form', { novalidate: true, class: 'group-form' },
        editor.el,
        h('p', { class: 'hint', text: 'Endpoints join a group with their Group field.' }),
        problems,
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'),
          h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save')));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        let body;
        try {
          body = editor.value();
        } catch (e) {
          replace(problems, errorBox(e));
          return;
        }
        try {
          if (group) {
            await api('PUT', `/groups/${encodeURIComponent(group.name)}`, { body, ifMatch: `"${group.version}"` });
          } else {
            await api('POST', '/groups', { body });
          }
          close(true);
        } catch (e) {
          replace(problems, errorBox(e));
        }
      });
      return form;
    },
  });
  if (saved) {
    toast('Group saved.', 'success');
    await renderCors(box);
  }
}

async function deleteGroup(/** @type {HTMLElement} */ box, /** @type {any} */ group) {
  const ok = await confirmDialog({
    title: `Delete the group ${group.name}?`,
    message: 'Published endpoints that use it must be moved to another group first.',
    confirm: 'Delete',
  });
  if (!ok) return;
  try {
    await api('DELETE', `/groups/${encodeURIComponent(group.name)}`);
    toast('Group deleted.', 'success');
  } catch (e) {
    toast(/** @type {any} */ (e).message, 'error');
  }
  await renderCors(box);
}

// ---------- token signing keys ----------

async function renderKeys(/** @type {HTMLElement} */ box) {
  const head = h('div', { class: 'panel-head' },
    h('div', null, h('h2', { id: 'keys-title', text: 'End-user token signing key' }),
      h('p', { class: 'hint', text: 'The secret that signs the tokens your endpoints issue with auth.issue_token.' })));
  let keys;
  try {
    const res = await api('GET', '/token-keys');
    keys = res.body.keys || res.body.token_keys || (Array.isArray(res.body) ? res.body : []);
  } catch (e) {
    const unavailable = e instanceof ApiError && (e.status === 404 || e.status === 405);
    replace(box, head, h('div', { class: 'panel-body' },
      h('p', { class: 'notice', text: unavailable ? 'Key rotation is not available on this server.' : `Keys could not be loaded: ${/** @type {any} */ (e).message}` })));
    return;
  }
  const current = keys.find((/** @type {any} */ k) => k.current);
  // The next key keeps the current key's algorithm; the other button switches it.
  const same = current?.alg === 'EdDSA' ? 'EdDSA' : 'HS256';
  const other = same === 'EdDSA' ? 'HS256' : 'EdDSA';
  head.append(
    h('button', { type: 'button', class: 'btn btn-sm', onclick: () => rotate(box, same) }, icon('refresh'), 'Rotate key'),
    h('button', { type: 'button', class: 'btn btn-sm', title: other === 'EdDSA' ? 'An Ed25519 key pair: other services can check tokens with its public key' : 'A shared secret (HMAC-SHA256)', onclick: () => rotate(box, other) },
      other === 'EdDSA' ? 'Rotate to Ed25519' : 'Rotate to HS256'));
  replace(box, head, keys.length
    ? h('ul', { class: 'list' }, keys.map((/** @type {any} */ k) => h('li', null,
        h('div', { class: 'grow' },
          h('div', { class: 'name', text: k.alg ? `Key ${k.id} · ${k.alg}` : `Key ${k.id}` }),
          h('div', { class: 'hint', text: [k.created_at ? `created ${fmtDate(k.created_at)}` : null, k.retired_at ? `retired ${fmtDate(k.retired_at)}` : null].filter(Boolean).join(' · ') })),
        k.current || k.active || k.status === 'current' ? h('span', { class: 'tag tag-success', text: 'current' }) : h('span', { class: 'tag', text: k.status || 'previous' }))))
    : h('div', { class: 'empty' }, h('p', { text: 'No keys listed.' })));
}

async function rotate(/** @type {HTMLElement} */ box, /** @type {string} */ alg) {
  const ok = await confirmDialog({
    title: 'Rotate the signing key?',
    message: 'New tokens are signed with a new key. Tokens signed with the old key stay valid until they expire (at most 30 days); nobody is signed out.',
    confirm: 'Rotate',
  });
  if (!ok) return;
  try {
    await api('POST', `/token-keys/rotate?alg=${encodeURIComponent(alg)}`, { body: {} });
    toast('Signing key rotated.', 'success');
  } catch (e) {
    toast(/** @type {any} */ (e).message, 'error');
  }
  await renderKeys(box);
}

function fmtDate(/** @type {string} */ s) {
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? s : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
