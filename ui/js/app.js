// @ts-check
/**
 * The editor's shell: first-run setup, login, the sidebar and the hash router. Screens are
 * modules with `mount(el, ctx)` that may return a cleanup function.
 *
 * Routes: #/tables · #/tables/{name} (data grid) · #/tables/{name}/schema (designer) ·
 * #/tables/{name}/history · #/flows · #/flows/{id} (from ./flows/index.js) · #/jobs · #/jobs/{id} · #/settings
 *
 * On a route change the current screen's guard (`ctx.guard`) may keep the builder where they
 * are; otherwise the open dialogs close (as dismissed) and the new screen is mounted.
 */
import { api, ApiError, setCsrfToken, setUnauthorizedHandler } from './api.js';
import { h, replace, field, icon } from './dom.js';
import { toast, dialog, confirmDialog, errorBox, closeDialogs } from './ui.js';

const root = /** @type {HTMLElement} */ (document.getElementById('app'));

/** @type {{id: number, email: string} | null} */
let user = null;
/** @type {(() => void) | null} */
let cleanup = null;
/** The current screen's leave check: a question to confirm before leaving, or null to leave
 * freely. Set with `ctx.guard`, dropped on every route. @type {(() => string | null) | null} */
let leaveGuard = null;
/** The hash the current screen was routed for. */
let currentHash = location.hash;

function brand() {
  return h('div', { class: 'brand' },
    h('img', { src: '/_/img/logo.svg', alt: '', width: '28', height: '28' }),
    h('span', { text: 'Sluice' }));
}

/** The centred card of the setup and login pages. */
function authCard(/** @type {string} */ title, /** @type {string} */ lead, /** @type {HTMLElement} */ form) {
  replace(root,
    h('main', { class: 'auth-page' },
      h('div', { class: 'auth-card' },
        brand(),
        h('h1', { text: title }),
        h('p', { class: 'lead', text: lead }),
        form)));
  root.removeAttribute('aria-busy');
  const first = /** @type {HTMLInputElement | null} */ (form.querySelector('input'));
  first?.focus();
}

/**
 * A form with email and password that posts to `path`.
 * @param {string} path
 * @param {string} submitLabel
 * @param {boolean} newPassword
 * @param {Record<string, string>} [extra] more fields of the request body
 */
function credentialsForm(path, submitLabel, newPassword, extra = {}) {
  const email = h('input', { type: 'email', name: 'email', required: true, autocomplete: 'username', placeholder: 'you@example.com' });
  const password = h('input', {
    type: 'password', name: 'password', required: true,
    autocomplete: newPassword ? 'new-password' : 'current-password',
    minlength: newPassword ? '8' : null,
  });
  const problems = h('div', { class: 'form-errors', 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', text: submitLabel });
  const form = h('form', { class: 'auth-form', novalidate: true },
    field('Email', email),
    field('Password', password, newPassword ? 'At least 8 characters.' : undefined),
    problems,
    submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(problems);
    submit.setAttribute('disabled', '');
    try {
      const res = await api('POST', path, {
        body: { ...extra, email: /** @type {HTMLInputElement} */ (email).value, password: /** @type {HTMLInputElement} */ (password).value },
        noRedirect: true,
      });
      setCsrfToken(res.body.csrf_token);
      user = res.body.user;
      // The setup link's token is spent: drop it from the address bar and the history.
      if (location.pathname !== '/_/') history.replaceState(null, '', '/_/' + location.hash);
      if (!location.hash || location.hash === '#/') history.replaceState(null, '', '#/tables');
      showApp();
    } catch (e) {
      replace(problems, errorBox(e));
      submit.removeAttribute('disabled');
    }
  });
  return form;
}

function showSetup() {
  const token = new URLSearchParams(location.search).get('token');
  if (!token) {
    authCard('Welcome to Sluice', 'To create the admin account, open the one-time setup link that Sluice printed in its log when it started (it ends in /_/setup?token=…), in a browser on the machine Sluice runs on.',
      h('p', { class: 'setup-hint', text: 'No setup link? Restart Sluice and look for “Create the first one at” in its output.' }));
    return;
  }
  authCard('Welcome to Sluice', 'Create the admin account for this instance. You can add API tokens for scripts later, in Settings.',
    credentialsForm('/setup', 'Create account', true, { token }));
}

function showLogin() {
  user = null;
  main = null;
  setCsrfToken(null);
  authCard('Sign in', 'Sign in to design tables and endpoints.', credentialsForm('/session', 'Sign in', false));
}

const NAV = [
  { href: '#/tables', label: 'Tables', icon: 'table', match: 'tables' },
  { href: '#/flows', label: 'Endpoints', icon: 'flow', match: 'flows' },
  { href: '#/jobs', label: 'Jobs', icon: 'history', match: 'jobs' },
  { href: '#/settings', label: 'Settings', icon: 'settings', match: 'settings' },
];

/** @type {HTMLElement | null} */
let main = null;

function showApp() {
  main = h('main', { id: 'main', class: 'main', tabindex: '-1' });
  const nav = h('nav', { class: 'sidebar', 'aria-label': 'Main' },
    brand(),
    h('ul', { class: 'nav' },
      NAV.map((n) => h('li', null, h('a', { href: n.href, class: 'nav-link', dataset: { match: n.match } }, icon(n.icon), h('span', { text: n.label })))),
      h('li', null, h('a', { href: '/api/docs', class: 'nav-link', target: '_blank', rel: 'noopener' }, icon('docs'), h('span', { text: 'API docs' }), icon('external')))),
    h('div', { class: 'account' },
      h('div', { class: 'account-email', title: user?.email || '', text: user?.email || '' }),
      h('button', { type: 'button', class: 'btn btn-ghost btn-sm', onclick: logout }, icon('logout'), 'Sign out')));
  replace(root, h('a', { href: '#main', class: 'skip-link', text: 'Skip to content' }), h('div', { class: 'layout' }, nav, main));
  root.removeAttribute('aria-busy');
  route();
}

async function logout() {
  try {
    await api('DELETE', '/session', { noRedirect: true });
  } catch (e) {
    // The session may already be gone; the login form is right either way.
  }
  main = null;
  if (cleanup) {
    try { cleanup(); } catch (e) { console.error(e); }
    cleanup = null;
  }
  history.replaceState(null, '', '/_/');
  showLogin();
}

/** The context every screen receives. */
function context(/** @type {string[]} */ params) {
  return {
    user,
    params,
    navigate: (/** @type {string} */ hash) => { location.hash = hash; },
    /** Asks `check()` before the route changes; a question it returns is confirmed first. */
    guard: (/** @type {() => string | null} */ check) => { leaveGuard = check; },
    toast,
    dialog,
    confirm: confirmDialog,
    errorBox,
    api,
  };
}

/** Shows the screen of the current hash. `moveFocus`: after a navigation, focus goes to the
 * new content so a screen reader announces it. */
async function route(moveFocus = false) {
  if (!main) return;
  currentHash = location.hash;
  leaveGuard = null;
  const hash = location.hash.replace(/^#\/?/, '').split('?')[0];
  const parts = hash.split('/').filter(Boolean).map(decodeURIComponent);
  const section = parts[0] || 'tables';
  for (const a of document.querySelectorAll('.nav-link')) {
    const match = /** @type {HTMLElement} */ (a).dataset.match === section;
    a.classList.toggle('active', match);
    if (match) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (cleanup) {
    try { cleanup(); } catch (e) { console.error(e); }
    cleanup = null;
  }
  const el = h('div', { class: 'screen' });
  replace(main, el);
  /** @type {Promise<any>} */
  let mod;
  let title = 'Sluice';
  switch (section) {
    case 'tables':
      mod = parts[1] ? import('./table.js') : import('./tables.js');
      title = parts[1] ? `${parts[1]} · Tables` : 'Tables';
      break;
    case 'flows':
      mod = import('./flows/index.js');
      title = 'Endpoints';
      break;
    case 'jobs':
      mod = import('./jobs.js');
      title = parts[1] ? `Job #${parts[1]} · Jobs` : 'Jobs';
      break;
    case 'settings':
      mod = import('./settings.js');
      title = 'Settings';
      break;
    default:
      replace(el, h('div', { class: 'empty' }, h('h1', { text: 'Not found' }), h('p', null, 'There is no page here. ', h('a', { href: '#/tables', text: 'Go to Tables' }))));
      return;
  }
  document.title = `${title} · Sluice`;
  try {
    const m = await mod;
    const done = await m.mount(el, context(parts.slice(1)));
    cleanup = typeof done === 'function' ? done : null;
    if (moveFocus === true && main && !document.querySelector('dialog[open]')) main.focus({ preventScroll: true });
  } catch (e) {
    // A 401 already brought up the sign-in form.
    if (e instanceof ApiError && e.status === 401) return;
    if (!el.isConnected) return;
    console.error(e);
    const what = section === 'flows' ? 'The endpoints editor could not be loaded.' : 'This screen could not be loaded.';
    replace(el, h('div', { class: 'load-error', role: 'alert' },
      h('h1', { text: what }),
      h('p', { text: e instanceof ApiError ? e.message : String(e && /** @type {any} */ (e).message || e) }),
      h('button', { type: 'button', class: 'btn', onclick: () => route(true) }, 'Try again')));
  }
}

/**
 * A route change (a link, Back, Forward): the screen's guard may keep the builder where they
 * are (the address goes back to the current screen); otherwise every open dialog closes as
 * dismissed and the new screen is shown. A hashchange to the same hash re-mounts the screen
 * (screens use it to reload) without asking.
 */
function onHashChange() {
  if (location.hash !== currentHash && leaveGuard) {
    const question = leaveGuard();
    if (question && !window.confirm(question)) {
      history.replaceState(null, '', currentHash || '#/tables');
      return;
    }
  }
  closeDialogs();
  route(true);
}

async function boot() {
  setUnauthorizedHandler(showLogin);
  window.addEventListener('hashchange', onHashChange);
  const page = document.body.dataset.page;
  if (page === 'setup') {
    showSetup();
    return;
  }
  if (page === 'login') {
    showLogin();
    return;
  }
  try {
    const res = await api('GET', '/session', { noRedirect: true });
    user = res.body.user;
    setCsrfToken(res.body.csrf_token);
    if (!location.hash) history.replaceState(null, '', '#/tables');
    showApp();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) showLogin();
    else replace(root, h('main', { class: 'auth-page' }, errorBox(e)));
  }
}

boot();
