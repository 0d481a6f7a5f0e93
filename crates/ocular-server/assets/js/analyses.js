// /analyses: the analyses made in this browser, newest first, a page at a time (?offset=N in
// the page URL, so every page has an address and the browser's back button works).
//
// The list comes from this browser (mine.js), not from the server: stored analyses are
// private, and only the API key may list them all.

import { $, formatDate, h, percent, showStatus } from './dom.js';
import { pageUrl, photoUrl, remembered } from './mine.js';

const LIMIT = 20;
const status = $('#status');
const list = $('#analyses');

function pageLink(el, offset) {
  if (offset === null || offset === undefined) {
    el.hidden = true;
    el.removeAttribute('href');
    return;
  }
  el.href = offset > 0 ? `/analyses?offset=${offset}` : '/analyses';
  el.hidden = false;
}

function item(a) {
  const p = a.prediction || {};
  const missing = () => h('span', { class: 'thumb-missing', 'aria-hidden': 'true' });
  const thumb = h('img', { src: photoUrl(a.id, a.token), alt: '', loading: 'lazy', width: 96, height: 96 });
  // Deleted elsewhere, or its photo removed by the retention policy.
  thumb.addEventListener('error', () => thumb.replaceWith(missing()));
  return h(
    'li',
    { dataset: { id: a.id } },
    h(
      'a',
      { href: pageUrl(a.id, a.token), class: 'analysis-item' },
      thumb,
      h(
        'span',
        { class: 'analysis-text' },
        h('strong', { class: 'block' }, p.name || p.code || 'Analysis'),
        h(
          'span',
          { class: 'muted block' },
          [typeof p.probability === 'number' ? percent(p.probability) : null, formatDate(a.created_at)]
            .filter(Boolean)
            .join(' · '),
        ),
      ),
    ),
  );
}

function load() {
  const params = new URLSearchParams(location.search);
  const offset = Math.max(0, Number.parseInt(params.get('offset') || '0', 10) || 0);
  const all = remembered();
  const items = all.slice(offset, offset + LIMIT);
  list.replaceChildren(...items.map(item));
  if (items.length === 0) {
    showStatus(status, 'info', offset > 0 ? 'No more analyses.' : 'No analyses made in this browser yet. ');
    if (offset === 0) status.append(h('a', { href: '/analyze' }, 'Analyse a photo'), '.');
  } else {
    showStatus(status, 'info', `Showing ${offset + 1}–${offset + items.length} of ${all.length}.`);
  }
  pageLink($('#prev'), offset > 0 ? Math.max(0, offset - LIMIT) : null);
  pageLink($('#next'), offset + LIMIT < all.length ? offset + LIMIT : null);
}

load();
