// /products: the catalog a page at a time (?offset=N&category=C in the page URL), a form to
// add a product with an uploaded photo (multipart) or an image address (JSON), and delete with
// a confirmation dialog.

import { api, errorText, setApiKey } from './api.js';
import { $, $$, h, showStatus } from './dom.js';
import { photoPicker } from './drop.js';
import { productCard } from './card.js';

const LIMIT = 12;
const status = $('#status');
const list = $('#products');
const addForm = $('#add-form');
const picker = photoPicker($('#p-image'));

let view = readView();

function readView() {
  const params = new URLSearchParams(location.search);
  return {
    offset: Math.max(0, Number.parseInt(params.get('offset') || '0', 10) || 0),
    category: (params.get('category') || '').trim(),
  };
}

function viewUrl(v) {
  const params = new URLSearchParams();
  if (v.category) params.set('category', v.category);
  if (v.offset > 0) params.set('offset', String(v.offset));
  const qs = params.toString();
  return qs ? `/products?${qs}` : '/products';
}

function pageLink(el, offset) {
  if (offset === null || offset === undefined) {
    el.hidden = true;
    el.removeAttribute('href');
    return;
  }
  el.href = viewUrl({ ...view, offset });
  el.hidden = false;
}

function card(product) {
  const label = product.title || product.id;
  return productCard(
    product,
    h('p', { class: 'muted product-id' }, `id: ${product.id}`),
    h(
      'button',
      { type: 'button', class: 'danger small', 'aria-label': `Delete ${label}`, onclick: () => confirmDelete(product) },
      'Delete',
    ),
  );
}

/** Shows the current page of the catalog; false (with the error shown) when it failed. */
async function load() {
  try {
    const page = await api('/api/v1/products', { query: { offset: view.offset, limit: LIMIT, category: view.category } });
    const items = Array.isArray(page.items) ? page.items : [];
    if (items.length === 0 && view.offset > 0) {
      // The last item of a page was deleted: show the page before it.
      view = { ...view, offset: Math.max(0, view.offset - LIMIT) };
      history.replaceState(null, '', viewUrl(view));
      return load();
    }
    list.replaceChildren(...items.map(card));
    if (items.length === 0) {
      list.append(h('li', { class: 'empty muted' }, view.category ? 'No products in this category.' : 'The catalog is empty. Add a product above.'));
    }
    pageLink($('#prev'), view.offset > 0 ? Math.max(0, view.offset - LIMIT) : null);
    pageLink($('#next'), page.next_offset);
    return true;
  } catch (err) {
    showStatus(status, 'error', errorText(err));
    return false;
  }
}

// ---- writing: errors and the API key ----

const keyForm = $('#key-form');

/** Shows why a write failed; when the server wants an API key, asks for one. */
function writeFailed(err) {
  showStatus(status, 'error', errorText(err));
  if (err.code === 'unauthorized') {
    keyForm.hidden = false;
    $('#api-key').focus();
  }
}

keyForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const key = $('#api-key').value.trim();
  if (!key) return;
  setApiKey(key);
  $('#api-key').value = '';
  keyForm.hidden = true;
  showStatus(status, 'info', 'Key saved for this tab. Try again.');
});

// ---- adding ----

function source() {
  return addForm.elements.source.value;
}
function showSource() {
  for (const panel of $$('.mode-panel', addForm)) panel.hidden = panel.dataset.mode !== source();
}
for (const radio of addForm.elements.source) radio.addEventListener('change', showSource);
showSource();

function fields() {
  const get = (name) => addForm.elements[name].value.trim();
  const f = { id: get('id'), title: get('title'), description: get('description'), category: get('category') };
  const price = get('price');
  if (price !== '') {
    const n = Number(price);
    if (Number.isNaN(n) || n < 0) throw new Error('Price must be a number of at least 0.');
    f.price = n;
  }
  const currency = get('currency').toUpperCase();
  if (currency !== '') {
    if (!/^[A-Z]{3}$/.test(currency)) throw new Error('Currency must be three letters, e.g. USD.');
    f.currency = currency;
  }
  if (!f.id) throw new Error('Give the product an id.');
  if (!f.title) throw new Error('Give the product a title.');
  for (const k of Object.keys(f)) if (f[k] === '') delete f[k];
  return f;
}

addForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  let f;
  try {
    f = fields();
  } catch (err) {
    showStatus(status, 'error', err.message);
    return;
  }
  const request = { method: 'POST' };
  if (source() === 'file') {
    const file = picker.file();
    if (!file) {
      showStatus(status, 'error', 'Choose a photo of the product, or give the address of one.');
      return;
    }
    const data = new FormData();
    for (const [k, v] of Object.entries(f)) data.append(k, String(v));
    data.append('image', file);
    request.form = data;
  } else {
    const url = addForm.elements.image_url.value.trim();
    if (!url) {
      showStatus(status, 'error', 'Give the address of the product photo, or upload one.');
      return;
    }
    request.json = { ...f, image_url: url };
  }
  const button = $('#add-submit');
  button.disabled = true;
  showStatus(status, 'busy', 'Adding the product…');
  try {
    const product = await api('/api/v1/products', request);
    addForm.reset();
    picker.clear();
    showSource();
    view = { offset: 0, category: '' };
    $('#filter-category').value = '';
    history.replaceState(null, '', viewUrl(view));
    // The message comes after the list shows the change, so what it says is on screen.
    if (await load()) showStatus(status, 'ok', `Added “${product.title || product.id}”.`);
  } catch (err) {
    writeFailed(err);
  } finally {
    button.disabled = false;
  }
});

// ---- deleting ----

const dialog = $('#confirm-delete');
let pending = null;

function confirmDelete(product) {
  pending = product;
  $('#confirm-delete-name').textContent = product.title || product.id;
  // Escape closes a dialog without touching returnValue: clear the last answer first.
  dialog.returnValue = '';
  dialog.showModal();
}

dialog.addEventListener('close', async () => {
  const product = pending;
  pending = null;
  if (!product || dialog.returnValue !== 'confirm') return;
  showStatus(status, 'busy', 'Deleting…');
  try {
    await api(`/api/v1/products/${encodeURIComponent(product.id)}`, { method: 'DELETE' });
    if (await load()) showStatus(status, 'ok', `Deleted “${product.title || product.id}”.`);
    $('#list-heading').focus();
  } catch (err) {
    writeFailed(err);
  }
});

// ---- filtering ----

$('#filter-category').value = view.category;
$('#filter-form').addEventListener('submit', (e) => {
  e.preventDefault();
  view = { offset: 0, category: $('#filter-category').value.trim() };
  history.pushState(null, '', viewUrl(view));
  load();
});
window.addEventListener('popstate', () => {
  view = readView();
  $('#filter-category').value = view.category;
  load();
});

load();
