// /analyze: send a photo (and optional age, sex, body site) to POST /api/v1/analyze and show
// the result. A photo that is not skin is refused by the server with 422 `not_a_skin_photo`;
// the page shows why and offers to analyse it anyway (the same request with force=true).

import { api, errorText } from './api.js';
import { $, h, showStatus } from './dom.js';
import { photoPicker } from './drop.js';
import { pageUrl, remember } from './mine.js';
import { renderAnalysis } from './result.js';

const form = $('#analyze-form');
const status = $('#status');
const refusal = $('#refusal');
const result = $('#result');
const submit = $('#analyze-submit');
const forceButton = $('#force');

const picker = photoPicker($('#image'), () => {
  // A new photo invalidates what is shown for the previous one.
  refusal.hidden = true;
  showStatus(status, 'info', '');
});

// An image-only skin model (`ocular models import --skin` of a model without a metadata input)
// ignores age, sex and body site: the page does not ask for them. Shown until the card says so.
const metadata = $('#metadata');
api('/api/v1/models/skin')
  .then((card) => {
    if (card && card.uses_metadata === false) metadata.hidden = true;
  })
  .catch(() => {});

function buildForm() {
  const data = new FormData();
  data.append('image', picker.file());
  for (const name of metadata.hidden ? [] : ['age', 'sex', 'location']) {
    const value = form.elements[name].value.trim();
    if (value !== '') data.append(name, value);
  }
  return data;
}

function validate() {
  if (!picker.file()) return 'Choose a photo first.';
  const age = form.elements.age.value.trim();
  if (age !== '' && !(Number.isInteger(Number(age)) && Number(age) >= 0 && Number(age) <= 120)) {
    return 'Age must be a whole number from 0 to 120, or left empty.';
  }
  return null;
}

async function analyse(force) {
  const problem = validate();
  if (problem) {
    showStatus(status, 'error', problem);
    (picker.file() ? form.elements.age : $('#image')).focus();
    return;
  }
  submit.disabled = true;
  forceButton.disabled = true;
  refusal.hidden = true;
  result.hidden = true;
  showStatus(status, 'busy', 'Analysing the photo…');
  try {
    const analysis = await api('/api/v1/analyze', {
      method: 'POST',
      form: buildForm(),
      query: { gradcam: form.elements.gradcam.checked, force },
    });
    // Only this browser (or whoever gets the link) can open it again: keep its token.
    const kept = remember(analysis);
    showStatus(status, 'ok', 'Done. The analysis is saved: ');
    status.append(
      h('a', { href: pageUrl(analysis.id, analysis.token) }, 'private link'),
      kept
        ? '. Only this browser, or someone you give the link to, can open it.'
        : '. This browser cannot remember it: keep the link, it is the only way back.',
    );
    renderAnalysis(result, analysis).focus();
  } catch (err) {
    if (err.code === 'not_a_skin_photo') {
      showStatus(status, 'info', '');
      // The server's reason reads as a clause ("the photo looks like …"): make it a sentence.
      const reason = err.message || 'The photo did not pass the skin check.';
      $('#refusal-reason').textContent = reason.charAt(0).toUpperCase() + reason.slice(1);
      refusal.hidden = false;
      forceButton.focus();
    } else {
      showStatus(status, 'error', errorText(err));
    }
  } finally {
    submit.disabled = false;
    forceButton.disabled = false;
  }
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  analyse(false);
});
forceButton.addEventListener('click', () => analyse(true));
