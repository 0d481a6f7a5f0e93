// /search: search by photo (multipart POST /api/v1/search), by image address
// (POST /api/v1/search/url) or by text (POST /api/v1/search/text), with the shared filters,
// and page through results with the server's next_offset.
//
// Each search captures its query when submitted, so paging goes on with the same query even if
// the form is edited in between.

import { api, errorText } from './api.js';
import { $, $$, h, showStatus } from './dom.js';
import { photoPicker } from './drop.js';
import { productCard } from './card.js';

const form = $('#search-form');
const status = $('#status');
const section = $('#results-section');
const list = $('#results');
const prev = $('#prev');
const next = $('#next');
const submit = $('#search-submit');

const picker = photoPicker($('#query-image'));

function mode() {
  return form.elements.mode.value;
}

function showMode() {
  for (const panel of $$('.mode-panel', form)) panel.hidden = panel.dataset.mode !== mode();
}
for (const radio of form.elements.mode) radio.addEventListener('change', showMode);
showMode();

/** Filters from the form as numbers/strings, without the empty ones. */
function options() {
  const o = {};
  const num = (name, parse) => {
    const raw = form.elements[name].value.trim();
    if (raw === '') return;
    const v = parse(raw);
    if (Number.isNaN(v)) throw new Error(`${$(`label[for="${form.elements[name].id}"]`).textContent} must be a number.`);
    o[name] = v;
  };
  num('top_k', (s) => Number.parseInt(s, 10));
  num('threshold', Number);
  num('min_price', Number);
  num('max_price', Number);
  const category = form.elements.category.value.trim();
  if (category) o.category = category;
  return o;
}

/** Returns a function offset -> Promise<response> for the query in the form now. */
function capture() {
  const opts = options();
  switch (mode()) {
    case 'photo': {
      const file = picker.file();
      if (!file) throw new Error('Choose a photo first.');
      return (offset) => {
        const data = new FormData();
        data.append('image', file);
        for (const [k, v] of Object.entries(opts)) data.append(k, String(v));
        data.append('offset', String(offset));
        return api('/api/v1/search', { method: 'POST', form: data });
      };
    }
    case 'url': {
      const url = form.elements.image_url.value.trim();
      if (!url) throw new Error('Enter the address of an image.');
      return (offset) => api('/api/v1/search/url', { method: 'POST', json: { image_url: url, ...opts, offset } });
    }
    default: {
      const query = form.elements.query.value.trim();
      if (!query) throw new Error('Type a few words to search for.');
      return (offset) => api('/api/v1/search/text', { method: 'POST', json: { query, ...opts, offset } });
    }
  }
}

let run = null; // the captured query
let offsets = []; // offsets of the pages shown so far, for "Previous page"

/** Shows the cosine similarity: for text search `score` is a rank-fusion value (~0.03) that
 * means nothing to a person, while `similarity` is the same cosine for every kind of search. */
function scoreText(result) {
  const value = typeof result.similarity === 'number' ? result.similarity : result.score;
  return typeof value === 'number' ? `Score ${value.toFixed(3)}` : '';
}

async function show(offset) {
  submit.disabled = true;
  showStatus(status, 'busy', 'Searching…');
  try {
    const body = await run(offset);
    const results = Array.isArray(body.results) ? body.results : [];
    list.start = offset + 1;
    list.replaceChildren(
      ...results.map((r) => productCard(r.product, h('p', { class: 'score' }, scoreText(r)))),
    );
    section.hidden = false;
    const total = body.timings_ms && typeof body.timings_ms.total === 'number' ? ` in ${body.timings_ms.total.toFixed(1)} ms` : '';
    $('#results-summary').textContent = results.length
      ? `Results ${offset + 1}–${offset + results.length}${total}.`
      : 'No products match. Try a lower minimum similarity or fewer filters.';
    showStatus(status, 'ok', results.length ? `${results.length} products found.` : 'No products found.');
    prev.hidden = offsets.length === 0;
    next.hidden = body.next_offset === null || body.next_offset === undefined;
    next.dataset.offset = body.next_offset ?? '';
    next.dataset.current = String(offset);
  } catch (err) {
    showStatus(status, 'error', errorText(err));
  } finally {
    submit.disabled = false;
  }
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  try {
    run = capture();
  } catch (err) {
    showStatus(status, 'error', err.message);
    return;
  }
  offsets = [];
  show(0);
});

next.addEventListener('click', () => {
  offsets.push(Number(next.dataset.current));
  show(Number(next.dataset.offset)).then(() => $('#results-heading').focus());
});
prev.addEventListener('click', () => {
  const offset = offsets.pop() ?? 0;
  show(offset).then(() => $('#results-heading').focus());
});

// Offer the catalog's categories as suggestions; search works without them.
api('/api/v1/products', { query: { limit: 100 } })
  .then((page) => {
    const names = [...new Set((page.items || []).map((p) => p.category).filter(Boolean))].sort();
    $('#categories').replaceChildren(...names.map((c) => h('option', { value: c })));
  })
  .catch(() => {});
