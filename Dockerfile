# greenhouse-extract as a container image: an Airbyte source by default (the platform runs
# `docker run IMAGE spec|check|discover|read …`, which becomes `greenhouse-extract airbyte …`);
# Kubernetes jobs and Airflow's KubernetesPodOperator override the entrypoint to run `sync`.
#
# The builder and the runtime share one Debian release (bookworm): a binary linked against a
# newer glibc (plain `rust:1.95` follows Debian's newest release) would not start on
# bookworm-slim. Checked against the repository by tests/dockerfile.rs.
FROM rust:1.95-bookworm AS builder
WORKDIR /src

# 1. The dependencies alone, in their own layer: rebuilt when a manifest or Cargo.lock changes,
#    not on every source edit. Stub targets stand in for the workspace's sources.
COPY Cargo.toml Cargo.lock ./
COPY crates/harvest-sim/Cargo.toml crates/harvest-sim/Cargo.toml
COPY vendor vendor
RUN mkdir -p src crates/harvest-sim/src \
 && echo 'fn main() {}' > build.rs \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && echo 'fn main() {}' > crates/harvest-sim/src/main.rs && touch crates/harvest-sim/src/lib.rs \
 && cargo build --release --locked --bin greenhouse-extract \
 && rm -rf build.rs src crates/harvest-sim/src

# 2. The extractor: its sources and the stream declarations that build.rs embeds. The touch
#    makes Cargo rebuild over the stubs (COPY keeps the context's older modification times).
COPY build.rs ./
COPY src src
COPY streams streams
COPY crates/harvest-sim/src crates/harvest-sim/src
RUN touch build.rs src/main.rs src/lib.rs \
 && cargo build --release --locked --bin greenhouse-extract

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home airbyte
COPY --from=builder /src/target/release/greenhouse-extract /usr/local/bin/greenhouse-extract
USER airbyte
WORKDIR /home/airbyte
ENV AIRBYTE_ENTRYPOINT="greenhouse-extract airbyte"
LABEL io.airbyte.name=greenhouse-extract/source-greenhouse-v3 \
      io.airbyte.version=0.1.0
ENTRYPOINT ["greenhouse-extract", "airbyte"]
