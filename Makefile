# greenhouse-extract — developer entry points. `make demo` and `make test` are the README's two
# set-up commands; CI runs `bash .ci/run`, which installs the test tools and calls `make test`.

CARGO ?= cargo
S3S_FS := .tools/bin/s3s-fs
VENV := .venv
# The protocol clients, each in its own virtualenv: target-jsonl pins old jsonschema/pytz that
# conflict with the DuckDB venv, and the Airbyte models need pydantic 1.
VENV_SINGER := .venv-singer
VENV_AIRBYTE := .venv-airbyte
# The schedulers our users run, each in its own virtualenv too (tests/meltano.rs).
VENV_MELTANO := .venv-meltano
VENV_AIRFLOW := .venv-airflow
# The official OpenLineage client, whose models check our lineage events (tests/lineage.rs).
VENV_LINEAGE := .venv-lineage
# The Delta Lake readers of the current-state tables (tests/current_tables.rs): delta-rs's Python
# package and DuckDB with its delta extension (which must match DuckDB's version exactly).
VENV_DELTA := .venv-delta
# The SQL parser that checks every dialect `greenhouse-extract ddl` prints (tests/ddl.rs).
VENV_SQLGLOT := .venv-sqlglot

.PHONY: all build test lint fmt demo bench soak catalog readme tools clean-demo

all: build

build:
	$(CARGO) build --workspace --bins

## Everything CI runs: formatting, lints, generated-file drift, unit and end-to-end tests.
test: tools lint
	$(CARGO) test --workspace --all-targets

## Format and lint (no warnings allowed).
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## The main job on the embedded default: the bundled simulator and a local folder.
demo:
	bash scripts/demo.sh

## Benchmark against the simulator (README "Performance"): ~45 min; BENCH_ARGS=--quick for a
## few-minute trial, BENCH_ARGS=--skip-rate-limited to leave out the long rate-limited run,
## BENCH_ARGS=--skip-windows the window-length runs.
bench:
	$(CARGO) build --workspace --release --bins
	python3 scripts/bench.py $(BENCH_ARGS)

## The kill -9 sweeps at full length (CI runs 10 and 20 trials as part of `make test`): every
## re-run must equal the truth, the manifests must list exactly the data files (tests/soak.rs),
## and the current-state tables must equal the truth (tests/current_tables.rs).
soak:
	SOAK_TRIALS=$${SOAK_TRIALS:-100} $(CARGO) test --test soak -- --nocapture
	CURRENT_TABLE_TRIALS=$${CURRENT_TABLE_TRIALS:-100} $(CARGO) test --test current_tables \
		a_sync_killed_anywhere -- --nocapture

## Regenerate catalog.json and the README stream table from the declarations.
catalog:
	$(CARGO) run --quiet --bin greenhouse-extract -- discover > catalog.json
readme:
	$(CARGO) run --quiet --bin greenhouse-extract -- streams --markdown > target/streams.md
	$(CARGO) run --quiet --bin greenhouse-extract -- spec --markdown > target/config.md
	python3 scripts/readme_table.py README.md streams target/streams.md
	python3 scripts/readme_table.py README.md config target/config.md
	mkdir -p examples
	$(CARGO) run --quiet --bin greenhouse-extract -- spec --example > examples/config.toml

## Test tools: a real S3-compatible server (s3s-fs, pinned: 0.15+ needs rustc 1.96), an
## independent Parquet reader (DuckDB) in a local virtualenv, and the real protocol clients:
## a Singer target (target-jsonl) and the Airbyte protocol models; Meltano (~50 s to install on
## 2 cores; `meltano install` in its test fetches target-jsonl from PyPI, ~15 s) and Airflow
## (~65 s; no constraints file: its URL is on GitHub, which CI cannot reach); the SQL parser
## sqlglot (pure Python, a few seconds), which checks every dialect `ddl` prints.
tools: $(S3S_FS) $(VENV)/bin/python $(VENV_SINGER)/bin/target-jsonl $(VENV_AIRBYTE)/installed \
	$(VENV_MELTANO)/bin/meltano $(VENV_AIRFLOW)/bin/airflow $(VENV_LINEAGE)/installed \
	$(VENV_DELTA)/installed $(VENV_SQLGLOT)/installed

$(S3S_FS):
	$(CARGO) install s3s-fs@0.14.1 --locked --features binary --root .tools

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check duckdb==1.5.6 pytz==2026.6

$(VENV_DELTA)/installed:
	python3 -m venv $(VENV_DELTA)
	$(VENV_DELTA)/bin/pip install --quiet --disable-pip-version-check duckdb==1.5.5 \
		duckdb-extension-delta==1.5.5 deltalake==1.6.6 pyarrow==22.0.0
	touch $@

$(VENV_SQLGLOT)/installed:
	python3 -m venv $(VENV_SQLGLOT)
	$(VENV_SQLGLOT)/bin/pip install --quiet --disable-pip-version-check sqlglot==30.30.0
	touch $@

$(VENV_LINEAGE)/installed:
	python3 -m venv $(VENV_LINEAGE)
	$(VENV_LINEAGE)/bin/pip install --quiet --disable-pip-version-check openlineage-python==1.54.0
	touch $@

$(VENV_SINGER)/bin/target-jsonl:
	python3 -m venv $(VENV_SINGER)
	$(VENV_SINGER)/bin/pip install --quiet --disable-pip-version-check target-jsonl==0.1.4

# A stamp file: bin/python exists before the install succeeded.
$(VENV_AIRBYTE)/installed:
	python3 -m venv $(VENV_AIRBYTE)
	$(VENV_AIRBYTE)/bin/pip install --quiet --disable-pip-version-check airbyte-protocol-models==0.18.0
	touch $@

$(VENV_MELTANO)/bin/meltano:
	python3 -m venv $(VENV_MELTANO)
	$(VENV_MELTANO)/bin/pip install --quiet --disable-pip-version-check meltano==4.4.1

$(VENV_AIRFLOW)/bin/airflow:
	python3 -m venv $(VENV_AIRFLOW)
	$(VENV_AIRFLOW)/bin/pip install --quiet --disable-pip-version-check apache-airflow==3.3.2 \
		apache-airflow-providers-standard==1.21.0

clean-demo:
	rm -rf greenhouse-data
