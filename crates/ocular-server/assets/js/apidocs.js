// The API reference: renders /api/v1/openapi.json as this page, from this server only.
//
// The document is this server's own, but it is still inserted as text (h() children), never
// parsed as HTML, like everything else on these pages.

import { h } from './dom.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** The component a `$ref` names, or the schema itself. */
function resolve(doc, schema) {
  const ref = schema && schema.$ref;
  if (!ref || !ref.startsWith('#/')) return schema || {};
  return ref.slice(2).split('/').reduce((node, key) => (node ? node[key] : undefined), doc) || {};
}

function typeName(doc, schema) {
  if (!schema) return '';
  if (schema.$ref) return schema.$ref.split('/').pop();
  const types = [].concat(schema.type || []);
  if (types.includes('array')) return `[${typeName(doc, schema.items)}]`;
  return types.filter((t) => t !== 'null').join(' | ') + (types.includes('null') ? '?' : '');
}

/** A table of an object schema's fields (one level; nested types are named). */
function fields(doc, schema) {
  const s = resolve(doc, schema);
  const props = s.properties || {};
  const names = Object.keys(props);
  if (!names.length) return h('p', { class: 'muted' }, s.description || typeName(doc, schema) || 'object');
  const required = new Set(s.required || []);
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, h('th', {}, 'field'), h('th', {}, 'type'), h('th', {}, 'about'))),
    h(
      'tbody',
      {},
      names.map((name) =>
        h(
          'tr',
          {},
          h('td', {}, h('code', {}, name), required.has(name) ? ' *' : ''),
          h('td', {}, typeName(doc, props[name])),
          h('td', {}, props[name].description || ''),
        ),
      ),
    ),
  );
}

function operation(doc, path, method, op) {
  const parts = [h('h3', {}, h('code', {}, `${method.toUpperCase()} ${path}`), ' ', op.summary || '')];
  if (op.security) parts.push(h('p', { class: 'muted' }, 'Needs the API key (Authorization: Bearer or X-Api-Key).'));
  const params = op.parameters || [];
  if (params.length) {
    parts.push(
      h('ul', {}, params.map((p) => h('li', {}, h('code', {}, p.name), ` (${p.in}) `, p.description || ''))),
    );
  }
  const content = (op.requestBody && op.requestBody.content) || {};
  for (const [media, body] of Object.entries(content)) {
    parts.push(h('h4', {}, `Body: ${media}`), fields(doc, body.schema));
  }
  for (const [status, resp] of Object.entries(op.responses || {})) {
    if (status === 'default') continue;
    const json = resp.content && resp.content['application/json'];
    parts.push(h('h4', {}, `${status}: ${resp.description || ''}`));
    if (json && json.schema && json.schema.$ref) parts.push(fields(doc, json.schema));
  }
  return h('section', { class: 'card', id: op.operationId }, parts);
}

function render(doc) {
  const groups = new Map();
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || 'other';
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push(operation(doc, path, method, op));
    }
  }
  const routes = document.getElementById('api-routes');
  const toc = document.getElementById('api-toc');
  for (const [tag, ops] of groups) {
    toc.append(h('a', { href: `#tag-${tag}` }, tag), ' ');
    routes.append(h('h2', { id: `tag-${tag}` }, tag), ...ops);
  }
  const codes = doc['x-error-codes'] || [];
  document.getElementById('api-codes').append(
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, h('th', {}, 'code'), h('th', {}, 'status'), h('th', {}, 'meaning'))),
      h('tbody', {}, codes.map((c) => h('tr', {}, h('td', {}, h('code', {}, c.code)), h('td', {}, String(c.status)), h('td', {}, c.description)))),
    ),
  );
  document.getElementById('api-status').textContent =
    `${doc.info.title} ${doc.info.version}: OpenAPI ${doc.openapi}, ${codes.length} error codes.`;
}

fetch('/api/v1/openapi.json')
  .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
  .then(render)
  .catch((e) => {
    document.getElementById('api-status').textContent = `The document could not be loaded: ${e.message}`;
  });
