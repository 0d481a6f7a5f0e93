// /analyses/{id}: one stored analysis, rendered like a fresh one, with a way to delete it
// (these are health data; the person who made them should be able to remove them).
// The analysis opens with its token: from the link's fragment (#token=…, never sent to the
// server or in a Referer), else from this browser's own list (mine.js).

import { api, errorText } from './api.js';
import { $, formatDate, showStatus } from './dom.js';
import { forget, tokenFor } from './mine.js';
import { renderAnalysis } from './result.js';

const status = $('#status');
const id = decodeURIComponent(location.pathname.replace(/^\/analyses\//, '').replace(/\/$/, ''));
const path = `/api/v1/analyses/${encodeURIComponent(id)}`;
const token = new URLSearchParams(location.hash.slice(1)).get('token') || tokenFor(id);
const headers = token ? { 'X-Analysis-Token': token } : {};

async function load() {
  try {
    const analysis = await api(path, { headers });
    const name = analysis.prediction ? analysis.prediction.name : null;
    $('#title').textContent = `Analysis of ${formatDate(analysis.created_at)}`;
    document.title = `${name ? `${name} · ` : ''}Analysis · ocular`;
    showStatus(status, 'info', '');
    renderAnalysis($('#result'), analysis);
    $('#delete-row').hidden = false;
  } catch (err) {
    showStatus(status, 'error', errorText(err));
  }
}

const dialog = $('#confirm-delete');
$('#delete').addEventListener('click', () => {
  // Escape closes a dialog without touching returnValue: clear the last answer first.
  dialog.returnValue = '';
  dialog.showModal();
});
dialog.addEventListener('close', async () => {
  if (dialog.returnValue !== 'confirm') return;
  showStatus(status, 'busy', 'Deleting…');
  try {
    await api(path, { method: 'DELETE', headers });
    forget(id);
    location.assign('/analyses');
  } catch (err) {
    showStatus(status, 'error', errorText(err));
  }
});

load();
