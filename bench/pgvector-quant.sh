#!/usr/bin/env bash
# Issue 17 (item 5): pgvector's compact options against the index the store uses today.
#
#   [DATA=clustered|catalog] bench/pgvector-quant.sh [ROWS=100000] [QUERIES=50] [SPACES="image:1280 text:384"]
#
# For each space: ROWS synthetic vectors generated inside PostgreSQL (seeded), and QUERIES
# held-out queries drawn the same way. DATA=clustered (default): 50 clusters of unit vectors,
# spread 0.6 (ocular-index's `Clusters::new(rng, 50, dim, 0.6)`, the `clustered` data of
# crates/ocular-store/examples/pg_bench.rs: ~2000 nearly equidistant neighbours per query, the
# worst case for graph indexes). DATA=catalog: shaped like crates/ocular-search/examples/
# bench_catalog.rs: the image space is 21 non-negative unit seeds plus N(0, 0.03) per
# coordinate, clamped at 0 (the seeds there are real EfficientNet vectors; here half-rectified
# Gaussians), the text spaces random unit vectors. Exact top-10 by f32 inner product (a sequential
# scan) is the reference. Then, each timed over the QUERIES (median and p95 of the second of two
# passes, so caches are warm), with recall@10 against the reference:
#   f32 HNSW        hnsw (v vector_ip_ops) m 16 ef_construction 64: the store's index today
#   halfvec HNSW    hnsw ((v::halfvec(D)) halfvec_ip_ops), optionally rescored with the f32 vectors
#   binary + rescore hnsw ((binary_quantize(v)::bit(D)) bit_hamming_ops), top C by hamming
#                   distance, reordered by the full f32 vectors
# Index sizes come from pg_relation_size. Everything lives in schema pgq17, dropped at the end.
# Latency is measured inside the server (clock_timestamp around EXECUTE): no client round trip.
#
# For large runs: BINARY=0 skips the binary index (unusable at 100k, see docs/BENCHMARKS.md),
# EF="40 100 200" sets the ef_search values tried for both HNSW indexes, MWM the session's
# maintenance_work_mem (default 1GB; an HNSW graph larger than it is built much more slowly).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-100000}
QUERIES=${2:-50}
SPACES=${3:-"image:1280 text:384"}
DATA=${DATA:-clustered}
BINARY=${BINARY:-1}
EF=${EF:-"40 100"}
MWM=${MWM:-1GB}
[[ $MWM =~ ^[0-9]+[kMG]B$ ]] || { echo "MWM must look like 1GB" >&2; exit 2; }
for ef in $EF; do [[ $ef =~ ^[0-9]+$ ]] || { echo "EF must be integers" >&2; exit 2; }; done
URL=${OCULAR_TEST_DATABASE_URL:-$(scripts/pg-test-server.sh url)}
PSQL="$(scripts/pg-test-server.sh bin)/psql"
psql() { "$PSQL" "$URL" -X -v ON_ERROR_STOP=1 -q "$@"; }
trap 'psql -c "DROP SCHEMA IF EXISTS pgq17 CASCADE" >/dev/null 2>&1 || true' EXIT

echo "# pgvector-quant: DATA=$DATA, $ROWS rows, $QUERIES queries, $(date -u +%FT%TZ)"
echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# server: $(psql -Atc "SELECT split_part(version(), ' on ', 1) || ', pgvector ' || extversion FROM pg_extension WHERE extname = 'vector'")"

psql <<'SQL'
DROP SCHEMA IF EXISTS pgq17 CASCADE;
CREATE SCHEMA pgq17;
-- One measurement: every query once to warm caches, then again timed.
-- `sql` takes $1 = the query vector and returns the ids of the top 10.
CREATE FUNCTION pgq17.measure(tbl text, label text, sql text, ef int)
RETURNS TABLE (method text, p50_ms numeric, p95_ms numeric, recall numeric) LANGUAGE plpgsql AS $f$
DECLARE
  q record; ids int[]; t0 timestamptz; lat float8[] := '{}'; rec float8[] := '{}'; pass int;
BEGIN
  PERFORM set_config('hnsw.ef_search', ef::text, true);
  FOR pass IN 1..2 LOOP
    FOR q IN EXECUTE format('SELECT qid, v, gt FROM pgq17.%I_q ORDER BY qid', tbl) LOOP
      t0 := clock_timestamp();
      EXECUTE format('SELECT array_agg(id) FROM (' || sql || ') s', tbl) INTO ids USING q.v;
      IF pass = 2 THEN
        lat := lat || extract(epoch FROM clock_timestamp() - t0) * 1000;
        rec := rec || (SELECT count(*) FROM unnest(ids) x WHERE x = ANY (q.gt))::float8 / 10;
      END IF;
    END LOOP;
  END LOOP;
  RETURN QUERY SELECT label,
    round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(lat) x)::numeric, 2),
    round((SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY x) FROM unnest(lat) x)::numeric, 2),
    round((SELECT avg(x) FROM unnest(rec) x)::numeric, 3);
END $f$;
SQL


# The SQL that fills \${name} (id, v) and \${name}_q (qid, v, gt NULL).
gen() {
  if [[ $DATA == catalog && $name == image ]]; then
    # Seeds: half-rectified Gaussians, unit; products: seed + N(0, 0.03), clamped at 0.
    local vec="l2_normalize((SELECT array_agg(greatest(x + 0.03 * random_normal(), 0)) FROM unnest(c.v::real[]) x WHERE i > 0)::vector($D))"
    local seeds="l2_normalize((SELECT array_agg(greatest(random_normal(), 0)) FROM generate_series(1, $D) g WHERE c >= 0)::vector($D))"
    K=21
  elif [[ $DATA == catalog ]]; then
    # Random unit vectors (bench_catalog's synthetic text vectors).
    local vec="l2_normalize((SELECT array_agg(random_normal()) FROM generate_series(1, $D) g WHERE i > 0)::vector($D))"
    local seeds="NULL::vector"
    K=1
  else
    local vec="l2_normalize(c.v + (SELECT array_agg(random_normal(0, 0.6 / sqrt($D))) FROM generate_series(1, $D) g WHERE i > 0)::vector($D))"
    local seeds="l2_normalize((SELECT array_agg(random_normal()) FROM generate_series(1, $D) g WHERE c >= 0)::vector($D))"
    K=50
  fi
  local rows_from="FROM (SELECT i, floor(random() * $K)::int AS k FROM generate_series(1, N) i) r JOIN ${name}_c c ON c.c = r.k"
  cat <<GEN
CREATE UNLOGGED TABLE ${name}_c AS SELECT c, $seeds AS v FROM generate_series(0, $K - 1) c;
\\timing on
\\echo generate rows:
CREATE UNLOGGED TABLE ${name} (id int PRIMARY KEY, v vector($D) NOT NULL);
INSERT INTO ${name} SELECT i, $vec ${rows_from/N/$ROWS};
CREATE UNLOGGED TABLE ${name}_q AS SELECT i AS qid, $vec AS v, NULL::int[] AS gt ${rows_from/N/$QUERIES};
GEN
}

binary_build() {
  [[ $BINARY == 1 ]] || return 0
  echo '\echo build binary HNSW:'
  echo "CREATE INDEX ${name}_bit ON ${name} USING hnsw ((binary_quantize(v)::bit($D)) bit_hamming_ops) WITH (m = 16, ef_construction = 64);"
}
binary_explain() {
  [[ $BINARY == 1 ]] || return 0
  echo "EXPLAIN (COSTS OFF) SELECT id FROM (SELECT id, v FROM ${name} ORDER BY binary_quantize(v)::bit($D) <~> binary_quantize((SELECT v FROM ${name}_q LIMIT 1)) LIMIT 100) c ORDER BY v <#> (SELECT v FROM ${name}_q LIMIT 1) LIMIT 10;"
}
# The measured searches, one UNION ALL of measure() rows.
measures() {
  local t="pgq17.%I" rows=()
  rows+=("measure('${name}', 'exact f32 (seq scan)', 'SELECT id FROM $t ORDER BY inner_product(v, \$1) DESC LIMIT 10', 40)")
  for ef in $EF; do
    rows+=("measure('${name}', 'f32 HNSW ef $ef', 'SELECT id FROM $t ORDER BY v <#> \$1 LIMIT 10', $ef)")
  done
  for ef in $EF; do
    rows+=("measure('${name}', 'halfvec HNSW ef $ef', 'SELECT id FROM $t ORDER BY v::halfvec($D) <#> \$1::halfvec($D) LIMIT 10', $ef)")
  done
  rows+=("measure('${name}', 'halfvec HNSW top 40 + f32 rescore', 'SELECT id FROM (SELECT id, v FROM $t ORDER BY v::halfvec($D) <#> \$1::halfvec($D) LIMIT 40) c ORDER BY v <#> \$1 LIMIT 10', 40)")
  if [[ $BINARY == 1 ]]; then
    for c in 40 100 200 400; do
      rows+=("measure('${name}', 'binary HNSW top $c + rescore', 'SELECT id FROM (SELECT id, v FROM $t ORDER BY binary_quantize(v)::bit($D) <~> binary_quantize(\$1) LIMIT $c) c ORDER BY v <#> \$1 LIMIT 10', $c)")
    done
  fi
  local first=1
  for r in "${rows[@]}"; do
    if ((first)); then printf 'SELECT * FROM %s\n' "$r"; first=0; else printf 'UNION ALL SELECT * FROM %s\n' "$r"; fi
  done
}

for sp in $SPACES; do
  name=${sp%%:*}; D=${sp##*:}
  echo
  echo "## $name space: $ROWS x $D"
  psql <<SQL
SET maintenance_work_mem = '$MWM';
SET search_path = pgq17, public;
\o /dev/null
SELECT setseed(0.17);
\o
$(gen)
VACUUM ANALYZE ${name};
\echo exact reference (sequential scans):
UPDATE ${name}_q q SET gt = (SELECT array_agg(id) FROM (SELECT id FROM ${name} ORDER BY inner_product(v, q.v) DESC, id LIMIT 10) s);
\echo build f32 HNSW:
CREATE INDEX ${name}_f32 ON ${name} USING hnsw (v vector_ip_ops) WITH (m = 16, ef_construction = 64);
\echo build halfvec HNSW:
CREATE INDEX ${name}_half ON ${name} USING hnsw ((v::halfvec($D)) halfvec_ip_ops) WITH (m = 16, ef_construction = 64);
$(binary_build)
\timing off
ANALYZE ${name};
SELECT c.relname AS relation, pg_size_pretty(pg_table_size(c.oid)) AS size, pg_table_size(c.oid) AS bytes,
       round(pg_table_size(c.oid)::numeric / $ROWS) AS bytes_per_row
FROM pg_class c WHERE c.relnamespace = 'pgq17'::regnamespace AND c.relname IN ('${name}', '${name}_pkey', '${name}_f32', '${name}_half', '${name}_bit')
ORDER BY bytes DESC;
-- The plans: each approximate query must use its own index.
EXPLAIN (COSTS OFF) SELECT id FROM ${name} ORDER BY v::halfvec($D) <#> (SELECT v FROM ${name}_q LIMIT 1)::halfvec($D) LIMIT 10;
$(binary_explain)
$(measures);
DROP TABLE ${name}, ${name}_c, ${name}_q;
SQL
done
echo
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
