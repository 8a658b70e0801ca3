#!/usr/bin/env bash
# `make demo`: the main job on the embedded default. Builds, starts the bundled Harvest v3
# simulator on a free loopback port, runs a full sync and then an incremental sync into
# ./greenhouse-data, and prints a DuckDB query to try (and its result, when a Python with DuckDB
# is at hand). Needs no Greenhouse account.
#
# Each run starts a new simulator with its own data, so it starts clean: the previous demo's
# folder (marked by .greenhouse-demo) is removed first. DEMO_CONTINUE=1 keeps it and continues
# from its state instead. A folder the demo did not create is never removed.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
echo "== Building greenhouse-extract and harvest-sim into $target/debug (the first build takes a few minutes)"
cargo build --quiet --workspace --bins
bin=$target/debug
dest=${GREENHOUSE_DESTINATION:-./greenhouse-data}
marker=.greenhouse-demo
if [ -e "$dest" ]; then
  if [ "${DEMO_CONTINUE:-0}" = 1 ]; then
    echo "== Continuing in $dest (DEMO_CONTINUE=1): the runs resume from its state"
  elif [ -e "$dest/$marker" ]; then
    echo "== Starting clean: removing the previous demo's $dest (DEMO_CONTINUE=1 keeps it)"
    rm -rf "$dest"
  elif [ -n "$(ls -A "$dest" 2>/dev/null)" ]; then
    echo "$dest exists and was not made by the demo: not touching it. Set GREENHOUSE_DESTINATION" >&2
    echo "to another folder, or DEMO_CONTINUE=1 to sync into it anyway." >&2
    exit 2
  fi
fi
mkdir -p "$dest"
touch "$dest/$marker"
work=$(mktemp -d)
trap 'kill "$sim_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# A generous rate limit keeps the demo quick; drop --rate-limit to see the real 75/30 s budget.
"$bin/harvest-sim" --port 0 --scale 1 --rate-limit 600 >"$work/sim.out" 2>"$work/sim.err" &
sim_pid=$!
for _ in $(seq 1 100); do
  url=$(head -n 1 "$work/sim.out" 2>/dev/null || true)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "the simulator did not start:"; cat "$work/sim.err"; exit 1; }
echo "Harvest v3 simulator listening on $url"

export GREENHOUSE_API_URL="$url" GREENHOUSE_TOKEN_URL="$url/token"
export GREENHOUSE_CLIENT_ID=sim-client GREENHOUSE_CLIENT_SECRET=sim-secret

echo; echo "== First run: full backfill of every non-sensitive stream into $dest"
"$bin/greenhouse-extract" sync --quiet --destination "$dest"

echo; echo "== Greenhouse changes: 25 updates, 10 inserts, 3 deletes per resource"
curl -fsS -X POST "$url/_sim/mutate?updates=25&inserts=10&deletes=3&seed=7" >/dev/null
# Each run's window ends a few seconds before it starts (records committed in the last moments
# may not be visible yet), so let the changes age past that.
sleep 6

echo; echo "== Second run: incremental (only the changed window is fetched)"
"$bin/greenhouse-extract" sync --quiet --destination "$dest"

abs=$(cd "$dest" && pwd)
query="SELECT id, first_name, last_name, updated_at FROM (
  SELECT * FROM read_parquet('$abs/candidates/**/*.parquet', hive_partitioning = true)
  QUALIFY row_number() OVER (PARTITION BY id ORDER BY _extracted_at DESC, _deleted DESC, updated_at DESC) = 1
  ) WHERE NOT _deleted ORDER BY updated_at DESC LIMIT 10"
cat <<MSG

Parquet files are under $abs/<stream>/extracted_date=YYYY-MM-DD/.
Query the latest version of each candidate with DuckDB (CLI, or \`pip install duckdb\` for Python):

  duckdb -c "$query"

  python3 -c "import duckdb; duckdb.sql(\"\"\"$query\"\"\").show()"

The current state of every stream is also a Delta Lake table under $abs/current/<stream>/
(one row per live record, deletes applied; no de-duplication needed):

  duckdb -c "INSTALL delta; LOAD delta; SELECT id, first_name, last_name FROM delta_scan('$abs/current/candidates') LIMIT 10"

  python3 -c "from deltalake import DeltaTable; print(DeltaTable('$abs/current/candidates').to_pyarrow_table().num_rows)"

The statements that make a warehouse read all of it (tables, raw history, de-duplicating views):

  $bin/greenhouse-extract ddl --dialect duckdb --destination $abs    # or athena, trino, snowflake, bigquery, spark
MSG
py=
for candidate in .venv/bin/python python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import duckdb" 2>/dev/null; then
    py=$candidate
    break
  fi
done
if [ -n "$py" ]; then
  echo; echo "== The query's result (DuckDB through $py):"
  "$py" -c "import duckdb; duckdb.sql(\"\"\"$query\"\"\").show()"
else
  echo; echo "(No Python with DuckDB found: \`make tools\` installs one into .venv, then the demo shows the result.)"
fi
