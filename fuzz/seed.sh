#!/usr/bin/env bash
# Builds the seed corpora under fuzz/corpus/<target>/ from the repository's own test data.
# Every target reads its first input byte as a mode (decode target, boundary length, import
# format, config dialect), so each seed is written once per mode it should reach.
set -euo pipefail
cd "$(dirname "$0")"
root=..
seed() { # seed TARGET NAME MODE-BYTE FILE
    mkdir -p "corpus/$1"
    { printf "\\x$(printf %02x "$3")"; cat "$4"; } > "corpus/$1/$2-$3"
}

# Images: the decoder's own fixtures small enough to mutate quickly (<= 32 KB).
for f in rgba.png animated.webp chelsea.webp china_draft.png; do
    for mode in 0 1; do seed image_decode "$f" "$mode" "$root/crates/ocular-image/tests/data/$f"; done
done
# A small JPEG with EXIF data (kamadak-exif's test image, from the local crate cache) for
# the JPEG, orientation and DCT-scaling paths.
exif=$(ls ~/.cargo/registry/src/*/kamadak-exif-*/tests/exif.jpg 2>/dev/null | head -1)
if [ -n "$exif" ]; then
    for mode in 0 1; do seed image_decode exif.jpg "$mode" "$exif"; done
fi

# Multipart forms as the upload endpoints receive them (boundary "XyZ-boundary-0123456789",
# mode 22 = its full length; other modes cut it short).
form=$(mktemp)
printf -- '--XyZ-boundary-0123456789\r\nContent-Disposition: form-data; name="age"\r\n\r\n45\r\n--XyZ-boundary-0123456789\r\nContent-Disposition: form-data; name="sex"\r\n\r\nfemale\r\n--XyZ-boundary-0123456789\r\nContent-Disposition: form-data; name="image"; filename="p.png"\r\nContent-Type: image/png\r\n\r\n' > "$form"
cat "$root/crates/ocular-image/tests/data/rgba.png" >> "$form"
printf -- '\r\n--XyZ-boundary-0123456789--\r\n' >> "$form"
for mode in 21 3; do seed multipart_form form "$mode" "$form"; done
rm -f "$form"

# Catalog files: the demo catalog (also read as Mongo input) and the importer's JSONL, CSV and
# mongoexport fixtures.
head -c 16384 "$root/demo/catalog.jsonl" > /tmp/ocular-seed-catalog.jsonl
seed import_lines catalog.jsonl 0 /tmp/ocular-seed-catalog.jsonl
seed import_lines catalog.jsonl 2 /tmp/ocular-seed-catalog.jsonl
seed import_lines catalog.csv 1 "$root/crates/ocular-search/tests/fixtures/catalog.csv"
seed import_lines fixture.jsonl 0 "$root/crates/ocular-search/tests/fixtures/catalog.jsonl"
seed import_lines fixture.mongo 2 "$root/crates/ocular-search/tests/fixtures/catalog.mongo.json"
rm -f /tmp/ocular-seed-catalog.jsonl

# Keras configs: config.json of every converter fixture archive.
for k in "$root"/fixtures/keras/*.keras; do
    name=$(basename "$k" .keras)
    python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("config.json"))' "$k" > "/tmp/ocular-seed-$name.json"
    for mode in 0 1; do seed keras_config "$name" "$mode" "/tmp/ocular-seed-$name.json"; done
    rm -f "/tmp/ocular-seed-$name.json"
done
ls corpus | while read -r t; do echo "$t: $(ls "corpus/$t" | wc -l) seeds"; done
