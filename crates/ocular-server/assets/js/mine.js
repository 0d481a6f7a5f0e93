// The analyses made in this browser: their ids and tokens, kept in localStorage.
//
// Stored analyses are private: the server opens one only with the token it returned when the
// analysis was made (or with the operator's API key), and it keeps no list of who made what.
// So the list of "my analyses" lives here, in this browser. Clearing the site's data forgets
// it; the analyses then stay on the server, unreachable, until they are deleted by the
// operator's retention policy.

const STORAGE = 'ocular.analyses';
/** Oldest entries are dropped beyond this many. */
const MAX = 500;

function load() {
  try {
    const list = JSON.parse(localStorage.getItem(STORAGE) || '[]');
    return Array.isArray(list) ? list.filter((a) => a && typeof a.id === 'string' && typeof a.token === 'string') : [];
  } catch {
    return [];
  }
}

function save(list) {
  try {
    localStorage.setItem(STORAGE, JSON.stringify(list.slice(0, MAX)));
    return true;
  } catch {
    // Storage disabled or full: the page still shows the result and its link.
    return false;
  }
}

/** Every remembered analysis, newest first: {id, token, created_at, prediction}. */
export function remembered() {
  return load();
}

/**
 * Remembers a fresh analysis (the body of POST /api/v1/analyze). Returns false when the
 * browser cannot store it (the page then says to keep the link).
 */
export function remember(a) {
  const p = a.prediction || {};
  const entry = {
    id: a.id,
    token: a.token,
    created_at: a.created_at,
    prediction: { code: p.code, name: p.name, probability: p.probability },
  };
  return save([entry, ...load().filter((x) => x.id !== a.id)]);
}

/** Forgets one analysis (after it was deleted). */
export function forget(id) {
  save(load().filter((x) => x.id !== id));
}

/** The token of a remembered analysis, or null. */
export function tokenFor(id) {
  const found = load().find((x) => x.id === id);
  return found ? found.token : null;
}

/** The page of one analysis; the token rides in the fragment, which is never sent anywhere. */
export function pageUrl(id, token) {
  return `/analyses/${encodeURIComponent(id)}#token=${encodeURIComponent(token)}`;
}

/** The URL of an analysis's photo for an <img>, which cannot send headers. */
export function photoUrl(id, token) {
  return `/api/v1/analyses/${encodeURIComponent(id)}/image.jpg?token=${encodeURIComponent(token)}`;
}
