// A product card, shared by search results and the catalog. Every field is stranger input and
// goes in as text (see dom.js).

import { formatPrice, h } from './dom.js';

/** `extra` nodes (a score, a delete button) are appended to the card's body. */
export function productCard(product, ...extra) {
  const p = product || {};
  const image = p.image_url
    ? h('img', { src: p.image_url, alt: '', loading: 'lazy', width: 320, height: 240 })
    : h('span', { class: 'no-image', 'aria-hidden': 'true' }, 'No image');
  return h(
    'li',
    { class: 'card product', dataset: { id: p.id ?? '' } },
    image,
    h(
      'div',
      { class: 'product-body' },
      h('h3', { class: 'product-title' }, p.title || p.id || 'Untitled'),
      p.price !== null && p.price !== undefined ? h('p', { class: 'price' }, formatPrice(p.price, p.currency)) : null,
      p.category ? h('p', { class: 'category muted' }, p.category) : null,
      p.description ? h('p', { class: 'description' }, p.description) : null,
      ...extra,
    ),
  );
}
