// Renders one analysis (the body of POST /api/v1/analyze and GET /api/v1/analyses/{id}).
//
// Shared by /analyze and /analyses/{id} so a stored analysis looks exactly like a fresh one.
// Layout: the top class and the malignant probability first (what a person asks), then the
// photo with its heatmap and a slider to fade between them, then all seven classes grouped
// into malignant and benign types, then the notice that this is not a diagnosis.

import { h, formatDate, percent } from './dom.js';

const DEFAULT_DISCLAIMER =
  'This is an estimate from a research model, not a medical diagnosis. See a doctor about any skin lesion that worries you.';

function bar(p) {
  const fill = h('span', { class: 'bar-fill' });
  // CSSOM writes are allowed by the page's CSP (inline style attributes are not).
  fill.style.width = `${Math.max(0, Math.min(1, Number(p) || 0)) * 100}%`;
  return h('span', { class: 'bar-track', 'aria-hidden': 'true' }, fill);
}

/** Bars of `items` ({code, name, probability}), the class `top` (a code) marked. */
export function classList(items, top) {
  return h(
    'ul',
    { class: 'bars' },
    items.map((c) =>
      h(
        'li',
        { dataset: { code: c.code }, class: c.code === top ? 'is-top' : null },
        h('span', { class: 'bar-label' }, c.name || c.code),
        bar(c.probability),
        h('span', { class: 'bar-value' }, percent(c.probability)),
      ),
    ),
  );
}

function groups(a) {
  const all = Array.isArray(a.probabilities) ? a.probabilities : [];
  const malignant = all.filter((c) => c.malignant);
  const benign = all.filter((c) => !c.malignant);
  const sum = (list) => list.reduce((s, c) => s + Number(c.probability || 0), 0);
  const malignantP = typeof a.malignant_probability === 'number' ? a.malignant_probability : sum(malignant);
  const top = a.prediction ? a.prediction.code : null;
  return h(
    'div',
    { class: 'classes' },
    h('h3', {}, 'All seven lesion types'),
    h('h4', { class: 'group malignant' }, 'Malignant types ', h('span', { class: 'group-sum' }, percent(malignantP))),
    classList(malignant, top),
    h('h4', { class: 'group benign' }, 'Benign types ', h('span', { class: 'group-sum' }, percent(sum(benign)))),
    classList(benign, top),
  );
}

/**
 * The photo with its heatmap and a control to fade between them. `a` has `probabilities`
 * (for class names), `heatmap` ({url, class}) and `image_url`; `missing` is the caption when
 * there is no heatmap.
 */
export function heatmapFigure(a, missing = 'No heatmap was computed for this analysis.') {
  const names = Object.fromEntries((a.probabilities || []).map((c) => [c.code, c.name]));
  const heat = a.heatmap && a.heatmap.url ? a.heatmap : null;
  const explained = heat ? names[heat.class] || heat.class || 'the top class' : null;
  const photo = a.image_url ? h('img', { class: 'photo', id: 'photo', src: a.image_url, alt: 'The analysed photo' }) : null;
  if (!heat) {
    return h(
      'figure',
      { class: 'compare' },
      photo,
      h('figcaption', { class: 'muted' }, missing),
    );
  }
  const overlay = h('img', {
    class: 'heatmap',
    id: 'heatmap',
    src: heat.url,
    alt: `Heatmap over the photo: the areas that most raised the estimate for ${explained}`,
  });
  const stack = h('div', { class: 'stack' }, photo, overlay);
  const caption = h(
    'figcaption',
    {},
    `Grad-CAM heatmap for ${explained}. Warm colours (red, yellow) mark the areas that most raised this estimate; blue areas had little effect.`,
  );
  if (!photo) return h('figure', { class: 'compare' }, stack, caption);

  // Fading the overlay over the original lets a person compare the two at any mix.
  const slider = h('input', {
    type: 'range',
    id: 'heatmap-opacity',
    min: 0,
    max: 100,
    step: 5,
    value: 100,
    'aria-describedby': 'heatmap-opacity-help',
  });
  const output = h('output', { for: 'heatmap-opacity', id: 'heatmap-opacity-value' }, '100%');
  // The label says what a press does; aria-pressed would contradict a changing label.
  const toggle = h('button', { type: 'button', class: 'secondary', id: 'heatmap-toggle' }, 'Show original');
  let remembered = 100;
  const apply = () => {
    const v = Number(slider.value);
    overlay.style.opacity = String(v / 100);
    output.textContent = `${v}%`;
    slider.setAttribute('aria-valuetext', v === 0 ? 'original photo' : `heatmap at ${v}%`);
    toggle.textContent = v === 0 ? 'Show heatmap' : 'Show original';
  };
  slider.addEventListener('input', apply);
  toggle.addEventListener('click', () => {
    if (Number(slider.value) === 0) {
      slider.value = String(remembered || 100);
    } else {
      remembered = Number(slider.value);
      slider.value = '0';
    }
    apply();
  });
  apply();
  return h(
    'figure',
    { class: 'compare' },
    stack,
    h(
      'div',
      { class: 'compare-controls' },
      h('label', { for: 'heatmap-opacity' }, 'Heatmap strength'),
      slider,
      output,
      toggle,
    ),
    h('p', { id: 'heatmap-opacity-help', class: 'muted' }, 'Slide to 0% to see the original photo.'),
    caption,
  );
}

function details(a) {
  const rows = [];
  const add = (k, v) => {
    if (v !== null && v !== undefined && v !== '') rows.push(h('dt', {}, k), h('dd', {}, String(v)));
  };
  if (a.model) {
    add('Model', [a.model.name, a.model.version].filter(Boolean).join(' '));
    if (typeof a.model.balanced_accuracy === 'number') {
      add('Balanced accuracy on its test set', percent(a.model.balanced_accuracy));
    }
  }
  if (a.input_check) {
    const c = a.input_check;
    add('Skin check', `${c.is_skin ? 'passed' : 'not passed'}${typeof c.score === 'number' ? ` (score ${c.score.toFixed(2)})` : ''}`);
    add('Skin check reason', c.reason);
  }
  if (a.timings_ms && typeof a.timings_ms === 'object') {
    const t = Object.entries(a.timings_ms)
      .filter(([, v]) => typeof v === 'number')
      .map(([k, v]) => `${k} ${v.toFixed(1)} ms`);
    add('Timings', t.join(', '));
  }
  add('Analysed', a.created_at ? formatDate(a.created_at) : null);
  add('Analysis id', a.id);
  return h('details', { class: 'details' }, h('summary', {}, 'Technical details'), h('dl', {}, rows));
}

/** Replaces `container`'s content with the rendering of analysis `a` and shows it. */
export function renderAnalysis(container, a) {
  const p = a.prediction || {};
  const heading = h('h2', { tabindex: '-1', id: 'result-heading' }, 'Result');
  container.replaceChildren(
    heading,
    a.forced
      ? h(
          'p',
          { class: 'alert warn', id: 'forced-note' },
          h('strong', {}, 'This photo did not pass the skin check'),
          a.input_check && a.input_check.reason ? `: ${a.input_check.reason}. ` : '. ',
          'It was analysed because you asked, so the result may mean nothing.',
        )
      : null,
    h(
      'div',
      { class: 'summary' },
      h('p', { class: 'kicker' }, 'Most likely'),
      h(
        'p',
        { class: 'top' },
        h('strong', { id: 'top-name' }, p.name || p.code || '?'),
        ' ',
        h('span', { id: 'top-prob', class: 'top-prob' }, percent(p.probability)),
        ' ',
        h('span', { class: `tag ${p.malignant ? 'malignant' : 'benign'}` }, p.malignant ? 'malignant type' : 'benign type'),
      ),
      h(
        'p',
        {},
        'Chance that it is one of the malignant types: ',
        h('strong', { id: 'malignant-prob' }, percent(a.malignant_probability ?? 0)),
      ),
    ),
    h('div', { class: 'result-grid' }, heatmapFigure(a), groups(a)),
    h('p', { class: 'notice', role: 'note', id: 'disclaimer' }, a.disclaimer || DEFAULT_DISCLAIMER),
    details(a),
  );
  container.hidden = false;
  return heading;
}
