// The one place pages talk to the JSON API.
//
// Every error comes back as {"error": {"code", "message"}}; `api()` turns it into an ApiError so
// pages can branch on the stable code (e.g. `not_a_skin_photo`) and show the server's message,
// which says what to fix. Network failures get a message of their own.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const KEY_STORAGE = 'ocular.apiKey';

/**
 * Remembers the API key for this tab (sessionStorage: gone when the tab closes), or forgets it
 * when `key` is empty. Only servers started with OCULAR_API_KEY ask for one, for catalog writes.
 */
export function setApiKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage disabled: the key cannot be kept, and the server will ask again.
  }
}

function apiKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

/** Builds '/path?a=1&b=2', leaving out empty values. */
export function withQuery(path, query = {}) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== null && v !== undefined && v !== '') params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/**
 * Calls the API. options: {method, query, json, form, headers}. Resolves to the parsed body
 * (null for 204), or rejects with an ApiError.
 */
export async function api(path, { method = 'GET', query, json, form, headers = {} } = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers } };
  const key = method === 'GET' ? null : apiKey();
  if (key) init.headers['X-Api-Key'] = key;
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers['Content-Type'] = 'application/json';
  } else if (form !== undefined) {
    init.body = form; // the browser sets the multipart boundary
  }
  let resp;
  try {
    resp = await fetch(withQuery(path, query), init);
  } catch {
    throw new ApiError(0, 'network', 'The server could not be reached. Check the connection and try again.');
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!resp.ok) {
    const err = body && typeof body.error === 'object' ? body.error : {};
    const retry = resp.headers.get('Retry-After');
    let message = err.message || `The server answered ${resp.status} ${resp.statusText}.`;
    if (resp.status === 503 && retry) message += ` Try again in ${retry} s.`;
    throw new ApiError(resp.status, err.code || `http_${resp.status}`, message, retry);
  }
  return body;
}

/** The message to show a person for any error thrown while calling the API. */
export function errorText(err) {
  if (err instanceof ApiError) return err.message;
  console.error(err);
  return 'Something went wrong in this page. Reload it and try again.';
}
