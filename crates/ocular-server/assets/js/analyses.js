// /analyses: stored analyses, newest first, a page at a time (?offset=N in the page URL, so
// every page has an address and the browser's back button works).

import { api, errorText } from './api.js';
import { $, formatDate, h, percent, showStatus } from './dom.js';

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
  return h(
    'li',
    { dataset: { id: a.id } },
    h(
      'a',
      { href: `/analyses/${encodeURIComponent(a.id)}`, class: 'analysis-item' },
      a.thumbnail_url
        ? h('img', { src: a.thumbnail_url, alt: '', loading: 'lazy', width: 96, height: 96 })
        : h('span', { class: 'thumb-missing', 'aria-hidden': 'true' }),
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

async function load() {
  const params = new URLSearchParams(location.search);
  const offset = Math.max(0, Number.parseInt(params.get('offset') || '0', 10) || 0);
  showStatus(status, 'busy', 'Loading…');
  try {
    const page = await api('/api/v1/analyses', { query: { offset, limit: LIMIT } });
    const items = Array.isArray(page.items) ? page.items : [];
    list.replaceChildren(...items.map(item));
    if (items.length === 0) {
      showStatus(status, 'info', offset > 0 ? 'No more analyses.' : 'No analyses yet. ');
      if (offset === 0) status.append(h('a', { href: '/analyze' }, 'Analyse a photo'), '.');
    } else {
      showStatus(status, 'info', `Showing ${offset + 1}–${offset + items.length}.`);
    }
    pageLink($('#prev'), offset > 0 ? Math.max(0, offset - LIMIT) : null);
    pageLink($('#next'), page.next_offset);
  } catch (err) {
    showStatus(status, 'error', errorText(err));
  }
}

load();
