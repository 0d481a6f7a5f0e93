// Building DOM from data without ever parsing data as HTML.
//
// Product titles and descriptions, file names and error messages are stranger input. They reach
// the page only as text nodes (`h()` children) or attribute values, never parsed as markup, so
// a title like `<img onerror=…>` is shown as the characters it is.

/** Creates an element: h('a', {href: '/x', class: 'btn'}, 'text', otherNode). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'href' || key === 'src') {
      const url = safeUrl(value);
      if (url) el.setAttribute(key, url);
    } else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/**
 * Returns the URL when it is safe to load or follow (http, https, a same-origin path, or a local
 * blob/data image), otherwise null: a `javascript:` URL in a product record must never run.
 */
export function safeUrl(value) {
  try {
    const url = new URL(String(value), location.href);
    if (['http:', 'https:', 'blob:'].includes(url.protocol)) return url.href;
    if (url.protocol === 'data:' && /^data:image\//i.test(url.href)) return url.href;
  } catch {
    // Not a URL at all.
  }
  return null;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** 0.6213 -> "62.1%" */
export function percent(p, digits = 1) {
  return `${(Number(p) * 100).toFixed(digits)}%`;
}

/** A price in the shop's currency, falling back to plain digits for an unknown currency code. */
export function formatPrice(price, currency) {
  if (price === null || price === undefined || price === '') return '';
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency || 'USD' }).format(price);
  } catch {
    return `${Number(price).toFixed(2)} ${currency || ''}`.trim();
  }
}

/** An ISO timestamp in the reader's locale, or the raw value when it does not parse. */
export function formatDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso ?? '') : d.toLocaleString();
}

/**
 * Shows a message in a status/alert region. kind: 'info' | 'busy' | 'error' | 'ok'.
 * Regions are live regions in the templates, so screen readers announce the change.
 */
export function showStatus(el, kind, text) {
  el.replaceChildren();
  el.className = `status ${kind}`;
  if (text) el.append(text);
}

/** Clears every child and hides nothing else: used before re-rendering a list. */
export function clear(el) {
  el.replaceChildren();
}
