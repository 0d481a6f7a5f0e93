// A photo picker: the native file input (keyboard-usable, labelled in the template), plus
// drag-and-drop onto its surrounding box and a preview of the chosen photo.
//
// The preview uses a blob: URL, so the photo is shown without being uploaded anywhere.

import { $ } from './dom.js';

/**
 * Wires the `.dropzone` that contains `input`. Calls onChange(file|null) after each change.
 * Returns {file(), clear()}.
 */
export function photoPicker(input, onChange = () => {}) {
  const zone = input.closest('.dropzone');
  const preview = zone ? $('.preview', zone) : null;
  let previewUrl = null;

  function update() {
    const file = input.files && input.files[0] ? input.files[0] : null;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    if (preview) {
      if (file && file.type.startsWith('image/')) {
        previewUrl = URL.createObjectURL(file);
        preview.src = previewUrl;
        preview.hidden = false;
      } else {
        preview.removeAttribute('src');
        preview.hidden = true;
      }
    }
    onChange(file);
  }

  input.addEventListener('change', update);
  if (zone) {
    // dragover must be cancelled for the box to accept a drop.
    for (const type of ['dragenter', 'dragover']) {
      zone.addEventListener(type, (e) => {
        if (!e.dataTransfer || ![...e.dataTransfer.types].includes('Files')) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = 'copy';
        zone.classList.add('dragging');
      });
    }
    zone.addEventListener('dragleave', (e) => {
      if (!zone.contains(e.relatedTarget)) zone.classList.remove('dragging');
    });
    zone.addEventListener('drop', (e) => {
      e.preventDefault();
      zone.classList.remove('dragging');
      const files = e.dataTransfer ? e.dataTransfer.files : null;
      if (!files || files.length === 0) return;
      // Putting the dropped file into the input keeps one source of truth for the form.
      const dt = new DataTransfer();
      dt.items.add(files[0]);
      input.files = dt.files;
      update();
      input.focus();
    });
  }

  return {
    file: () => (input.files && input.files[0] ? input.files[0] : null),
    clear() {
      input.value = '';
      update();
    },
  };
}
