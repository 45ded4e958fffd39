// @ts-check
/**
 * The only module that calls `fetch`. Talks to the admin API under /_/api/v1 with the session
 * cookie, sends the session's CSRF token with every request, and turns the error envelope
 * `{"error": {"code", "message", "details"}}` into thrown `ApiError`s.
 */

const BASE = '/_/api/v1';

/** An error answer of the admin API. */
export class ApiError extends Error {
  /** @type {number} */ status;
  /** @type {string} */ code;
  /** @type {any[]} */ details;

  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {any[]} [details]
   */
  constructor(status, code, message, details = []) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** @type {string | null} */
let csrfToken = null;

/** Remembers the CSRF token of the session (from login, setup or GET /session). */
export function setCsrfToken(/** @type {string | null} */ token) {
  csrfToken = token;
}

/** Called on 401: by default the page reloads, which shows the login form. */
let onUnauthorized = () => {
  window.location.assign('/_/');
};

/** Replaces what happens on 401 (the app shows the login form in place). */
export function setUnauthorizedHandler(/** @type {() => void} */ fn) {
  onUnauthorized = fn;
}

/**
 * @param {Response} resp
 * @returns {Promise<{status: number, etag: string | null, body: any}>}
 */
async function settle(resp, { redirectOn401 = true } = {}) {
  const text = await resp.text();
  const type = resp.headers.get('content-type') || '';
  /** @type {any} */
  let body = text;
  if (type.includes('json') && text !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  if (resp.ok || resp.status === 304) {
    return { status: resp.status, etag: resp.headers.get('etag'), body };
  }
  const err = body && typeof body === 'object' && body.error ? body.error : null;
  const error = new ApiError(
    resp.status,
    err ? String(err.code) : `http.${resp.status}`,
    err ? String(err.message) : `${resp.status} ${resp.statusText}`,
    err && Array.isArray(err.details) ? err.details : [],
  );
  if (resp.status === 401 && redirectOn401) onUnauthorized();
  throw error;
}

/**
 * @param {string} method
 * @param {Record<string, string>} extra
 */
function headersFor(method, extra) {
  /** @type {Record<string, string>} */
  const h = { Accept: 'application/json', ...extra };
  if (csrfToken && method !== 'GET' && method !== 'HEAD') h['X-CSRF-Token'] = csrfToken;
  return h;
}

/**
 * Calls the admin API. `path` is relative to /_/api/v1 (e.g. `/tables`). Resolves
 * `{status, etag, body}` on 2xx (body parsed as JSON when it is JSON, else text); throws
 * `ApiError` otherwise. A 401 also sends the browser to the login form.
 * @param {string} method
 * @param {string} path
 * @param {{body?: any, ifMatch?: string, headers?: Record<string, string>, noRedirect?: boolean}} [opts]
 */
export async function api(method, path, { body, ifMatch, headers, noRedirect } = {}) {
  const h = headersFor(method, headers || {});
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (ifMatch) h['If-Match'] = ifMatch;
  let resp;
  try {
    resp = await fetch(BASE + path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch (e) {
    throw new ApiError(0, 'network.error', 'Sluice cannot be reached. Check that the server is running.');
  }
  return settle(resp, { redirectOn401: !noRedirect });
}

/**
 * Sends a file or text as the raw body (CSV import, flow upload). Same result as `api`.
 * @param {string} method
 * @param {string} path
 * @param {Blob | string} blobOrText
 * @param {string} contentType
 */
export async function apiUpload(method, path, blobOrText, contentType) {
  const h = headersFor(method, { 'Content-Type': contentType });
  let resp;
  try {
    resp = await fetch(BASE + path, { method, headers: h, body: blobOrText, credentials: 'same-origin' });
  } catch (e) {
    throw new ApiError(0, 'network.error', 'Sluice cannot be reached. Check that the server is running.');
  }
  return settle(resp);
}

/**
 * Downloads `path` (relative to /_/api/v1) as a file named `filename`. Errors are thrown as
 * `ApiError` like `api`.
 * @param {string} path
 * @param {string} filename
 */
export async function download(path, filename) {
  const resp = await fetch(BASE + path, { headers: headersFor('GET', {}), credentials: 'same-origin' });
  if (!resp.ok) {
    await settle(resp);
    return;
  }
  const blob = await resp.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
