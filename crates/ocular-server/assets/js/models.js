// /models: every served model's card from GET /api/v1/models, each linking to the page that
// tries it (/models/{name} for imported classifiers, /analyze for the skin model).

import { api, errorText } from './api.js';
import { $, h, showStatus } from './dom.js';

const status = $('#status');
const list = $('#models');

/** Where a person tries this model. */
function tryUrl(card) {
  return card.kind === 'skin_classifier' ? '/analyze' : `/models/${encodeURIComponent(card.name)}`;
}

function describe(card) {
  const input = card.input || {};
  const classes = Array.isArray(card.classes) ? card.classes : [];
  const extra = Array.isArray(input.extra) ? input.extra : [];
  const parts = [];
  if (input.width && input.height) parts.push(`${input.width}×${input.height} photos`);
  else parts.push('photos of any size');
  parts.push(`${classes.length} ${classes.length === 1 ? 'class' : 'classes'}`);
  if (extra.length) parts.push(`also takes ${extra.map((e) => `${e.name} (${e.size})`).join(', ')}`);
  parts.push(card.gradcam_layer ? 'heatmap available' : 'no heatmap');
  return parts.join(' · ');
}

function item(card) {
  return h(
    'li',
    { dataset: { name: card.name || '' } },
    h(
      'a',
      { class: 'analysis-item model-item', href: tryUrl(card) },
      h(
        'span',
        {},
        h('strong', { class: 'model-title' }, card.name || '?'),
        ' ',
        h('span', { class: 'muted' }, [card.version, card.kind === 'skin_classifier' ? 'skin model' : null].filter(Boolean).join(' · ')),
        h('br'),
        h('span', { class: 'model-summary' }, describe(card)),
      ),
    ),
  );
}

async function load() {
  showStatus(status, 'busy', 'Loading the models…');
  try {
    const body = await api('/api/v1/models');
    const models = body && Array.isArray(body.models) ? body.models : [];
    list.replaceChildren(...models.map(item));
    showStatus(
      status,
      'ok',
      models.length
        ? `${models.length} ${models.length === 1 ? 'model' : 'models'} served.`
        : 'No model is served yet. Import one with `ocular models import FILE`, then reload the server.',
    );
  } catch (err) {
    showStatus(status, 'error', errorText(err));
  }
}

load();
