# greenhouse-extract as an Airbyte source image. The platform runs
# `docker run IMAGE spec|check|discover|read …`, which becomes `greenhouse-extract airbyte …`.
FROM rust:1.95 AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin greenhouse-extract

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
