# syntax=docker/dockerfile:1
# edx-webhooks: build with `docker build -t edx-webhooks .` in the repository.

# The source to build: this directory. `tutor images build webhookreceiver`
# replaces this stage with WEBHOOKRECEIVER_SOURCE (a named build context).
FROM scratch AS source
COPY . /

FROM docker.io/library/rust:1-slim-bookworm AS build
WORKDIR /src
# What the build reads, and nothing else (no target/ of a checkout).
COPY --from=source /Cargo.toml /Cargo.lock ./
COPY --from=source /src ./src
COPY --from=source /migrations ./migrations
COPY --from=source /templates ./templates
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin edx-webhooks \
    && install -m 0755 target/release/edx-webhooks /usr/local/bin/edx-webhooks

FROM docker.io/library/debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home edx-webhooks \
    && mkdir /data && chown 10001:10001 /data && chmod 0700 /data
COPY --from=build /usr/local/bin/edx-webhooks /usr/local/bin/edx-webhooks
# The embedded SQLite default, edx-webhooks.sqlite3, lands in the working
# directory: the volume. (No database URL is set here, so that the Django
# app's DJANGO_DATABASE_URL and Tutor's DB_MIGRATION_* keep working.)
WORKDIR /data
VOLUME ["/data"]
ENV EDX_WEBHOOKS_LISTEN=0.0.0.0:8090
EXPOSE 8090
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["edx-webhooks", "healthcheck"]
# Exec form without an entrypoint: SIGTERM reaches the service, which stops
# gracefully within the LMS timeout plus 5 s (give `docker stop` --time 60).
CMD ["edx-webhooks", "serve"]
