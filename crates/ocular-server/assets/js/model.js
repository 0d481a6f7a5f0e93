// /models/{name}: try one imported classifier. The page reads the model's card from
// GET /api/v1/models (its extra numeric inputs become labelled form fields), sends the photo to
// POST /api/v1/models/{name}/predict, and shows the classes with their probabilities and the
// Grad-CAM overlay. Predictions are not stored: the overlay arrives inline as a data: URL and
// the photo is shown from this browser's own copy (a blob: URL).

import { api, errorText } from './api.js';
import { $, h, percent, showStatus } from './dom.js';
import { photoPicker } from './drop.js';
import { classList, heatmapFigure } from './result.js';

const form = $('#predict-form');
const status = $('#status');
const result = $('#result');
const submit = $('#predict-submit');
const extrasBox = $('#extras');
const extraFields = $('#extra-fields');

// The name is the last path segment; the server answers this page for any name, and an unknown
// one is reported below from the model list.
const name = decodeURIComponent(location.pathname.replace(/\/+$/, '').split('/').pop() || '');
let card = null;
let photoUrl = null;

const picker = photoPicker($('#image'), () => showStatus(status, 'info', ''));

/** "1, 2 3" -> [1, 2, 3]; null when any part is not a finite number. */
function numbers(text) {
  const parts = text.trim().split(/[\s,]+/).filter(Boolean);
  const values = parts.map(Number);
  return values.every(Number.isFinite) ? values : null;
}

function extraField(e) {
  const id = `extra-${e.name}`;
  const help = `${id}-help`;
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, e.name),
    h('input', { type: 'text', id, name: e.name, required: true, inputmode: 'decimal', autocomplete: 'off', 'aria-describedby': help }),
    h('p', { id: help, class: 'muted' }, `${e.size} ${e.size === 1 ? 'number' : 'numbers'}, separated by commas or spaces`),
  );
}

function extras() {
  return card && card.input && Array.isArray(card.input.extra) ? card.input.extra : [];
}

function validate() {
  if (!picker.file()) return ['Choose a photo first.', $('#image')];
  for (const e of extras()) {
    const input = form.elements[e.name];
    const values = numbers(input.value);
    if (!values || values.length !== e.size) {
      return [`${e.name} needs ${e.size} ${e.size === 1 ? 'number' : 'numbers'}, separated by commas or spaces.`, input];
    }
  }
  const k = form.elements.top_k.value.trim();
  if (k !== '' && !(Number.isInteger(Number(k)) && Number(k) >= 1 && Number(k) <= 1000)) {
    return ['Classes to show must be a whole number from 1 to 1000.', form.elements.top_k];
  }
  return null;
}

function render(p) {
  const predictions = Array.isArray(p.predictions) ? p.predictions : [];
  const top = predictions[0] || {};
  const cam = p.gradcam && p.gradcam.overlay_url ? p.gradcam : null;
  if (photoUrl) URL.revokeObjectURL(photoUrl);
  photoUrl = picker.file() ? URL.createObjectURL(picker.file()) : null;
  const why = card && card.gradcam_unavailable ? `No heatmap: ${card.gradcam_unavailable}` : 'No heatmap was computed for this photo.';
  const figure = heatmapFigure(
    { probabilities: predictions, heatmap: cam ? { url: cam.overlay_url, class: cam.class } : null, image_url: photoUrl },
    why,
  );
  const timings = p.timings_ms && typeof p.timings_ms === 'object'
    ? Object.entries(p.timings_ms).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${k} ${v.toFixed(1)} ms`).join(', ')
    : '';
  const heading = h('h2', { tabindex: '-1', id: 'result-heading' }, 'Result');
  result.replaceChildren(
    heading,
    h(
      'div',
      { class: 'summary' },
      h('p', { class: 'kicker' }, 'Most likely'),
      h('p', { class: 'top' }, h('strong', { id: 'top-name' }, top.name || top.code || '?'), ' ', h('span', { id: 'top-prob', class: 'top-prob' }, percent(top.probability))),
    ),
    h(
      'div',
      { class: 'result-grid' },
      figure,
      h('div', { class: 'classes' }, h('h3', {}, predictions.length === 1 ? 'Top class' : `Top ${predictions.length} classes`), classList(predictions, top.code)),
    ),
    h(
      'details',
      { class: 'details' },
      h('summary', {}, 'Technical details'),
      h(
        'dl',
        {},
        p.model ? [h('dt', {}, 'Model'), h('dd', {}, [p.model.name, p.model.version].filter(Boolean).join(' '))] : null,
        p.image ? [h('dt', {}, 'Photo size'), h('dd', {}, `${p.image.width}×${p.image.height}`)] : null,
        cam ? [h('dt', {}, 'Heatmap grid'), h('dd', {}, `${cam.width}×${cam.height}`)] : null,
        timings ? [h('dt', {}, 'Timings'), h('dd', {}, timings)] : null,
      ),
    ),
  );
  result.hidden = false;
  return heading;
}

async function predict() {
  const problem = validate();
  if (problem) {
    showStatus(status, 'error', problem[0]);
    problem[1].focus();
    return;
  }
  const data = new FormData();
  data.append('image', picker.file());
  for (const e of extras()) data.append(e.name, form.elements[e.name].value.trim());
  submit.disabled = true;
  result.hidden = true;
  showStatus(status, 'busy', 'Running the model…');
  try {
    const p = await api(`/api/v1/models/${encodeURIComponent(name)}/predict`, {
      method: 'POST',
      form: data,
      query: { top_k: form.elements.top_k.value.trim(), gradcam: form.elements.gradcam.checked },
    });
    showStatus(status, 'ok', 'Done. Nothing about this photo was stored.');
    render(p).focus();
  } catch (err) {
    // The API's own message (e.g. which input is missing or malformed) says what to fix.
    showStatus(status, 'error', errorText(err));
  } finally {
    submit.disabled = false;
  }
}

async function load() {
  showStatus(status, 'busy', 'Loading the model…');
  try {
    const body = await api('/api/v1/models');
    const models = body && Array.isArray(body.models) ? body.models : [];
    card = models.find((m) => m.name === name && m.kind === 'classifier') || null;
    if (!card) {
      const skin = models.some((m) => m.name === name);
      showStatus(status, skin ? 'info' : 'error', skin ? '' : `No model named “${name}” is served here.`);
      if (skin) status.append('This is the skin model: try it on ', h('a', { href: '/analyze' }, 'the skin analysis page'), '.');
      return;
    }
    $('#model-name').textContent = `Try ${card.name}`;
    document.title = `Try ${card.name} · ocular`;
    const classes = Array.isArray(card.classes) ? card.classes : [];
    $('#model-lead').textContent =
      `${card.name} ${card.version || ''} sorts photos into ${classes.length} classes: ` +
      `${classes.slice(0, 8).map((c) => c.name || c.code).join(', ')}${classes.length > 8 ? ', …' : ''}.`;
    extraFields.replaceChildren(...extras().map(extraField));
    extrasBox.hidden = extras().length === 0;
    form.elements.top_k.max = String(Math.max(1, classes.length));
    form.elements.top_k.value = String(Math.min(5, Math.max(1, classes.length)));
    if (!card.gradcam_layer) {
      form.elements.gradcam.checked = false;
      form.elements.gradcam.disabled = true;
      $('label[for=gradcam]').textContent = 'No heatmap: this model does not allow an exact one';
    }
    form.hidden = false;
    showStatus(status, 'info', '');
  } catch (err) {
    showStatus(status, 'error', errorText(err));
  }
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  predict();
});

load();
