// Home page: live model status from /health?verbose=1, refreshed until the server is ready.

import { api, errorText } from './api.js';
import { $, h, showStatus } from './dom.js';

const STATE_TEXT = {
  ready: 'Ready',
  loading: 'Loading…',
  not_loaded: 'Loads on first use',
  failed: 'Failed',
  unloaded: 'Unloaded while idle',
};

function megabytes(bytes) {
  return bytes ? `${(bytes / 1e6).toFixed(1)} MB` : '—';
}

function render(health) {
  const readiness = $('#readiness');
  const models = Array.isArray(health.models) ? health.models : [];
  if (health.ready) {
    showStatus(readiness, 'ok', health.message ? `Ready: ${health.message}.` : 'Ready.');
  } else {
    showStatus(readiness, 'busy', `Starting: ${health.message || 'models are loading'}.`);
  }
  const table = $('#models');
  const body = $('tbody', table);
  body.replaceChildren(
    ...models.map((m) =>
      h(
        'tr',
        { dataset: { model: m.name || '' } },
        h('th', { scope: 'row' }, m.name || '?', m.version ? h('span', { class: 'muted' }, ` ${m.version}`) : null),
        h('td', {}, m.kind || ''),
        h(
          'td',
          {},
          h('span', { class: `state state-${m.state}` }, STATE_TEXT[m.state] || m.state || ''),
          m.error ? h('span', { class: 'muted block' }, m.error) : null,
          // A replacement that did not load: the version shown keeps serving.
          m.reload_error ? h('span', { class: 'muted block' }, `Reload failed: ${m.reload_error}`) : null,
        ),
        h('td', { class: 'num' }, megabytes(m.bytes)),
        h('td', { class: 'num' }, m.load_ms === null || m.load_ms === undefined ? '—' : `${m.load_ms} ms`),
      ),
    ),
  );
  table.hidden = models.length === 0;
  if (models.length === 0) {
    readiness.append(' No models are installed yet: run `ocular models fetch` on the server.');
  }
  const mem = health.memory || {};
  const parts = [];
  if (mem.rss_bytes) parts.push(`Server memory in use: ${megabytes(mem.rss_bytes)}`);
  if (mem.cgroup_limit_bytes) parts.push(`limit ${megabytes(mem.cgroup_limit_bytes)}`);
  $('#memory').textContent = parts.length ? `${parts.join(', ')}.` : '';
  return Boolean(health.ready) && models.every((m) => m.state !== 'loading');
}

async function refresh(attempt = 0) {
  try {
    const settled = render(await api('/health', { query: { verbose: 1 } }));
    // Poll while models load, with a bound so an idle tab does not poll forever.
    if (!settled && attempt < 60) setTimeout(() => refresh(attempt + 1), 2000);
  } catch (err) {
    showStatus($('#readiness'), 'error', errorText(err));
  }
}

refresh();
