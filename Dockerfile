# syntax=docker/dockerfile:1
#
# study-mode-api: a static (musl, rustls-only) binary on distroless/static, running as non-root.
#
#   docker build -t study-mode-api .
#   docker run --rm -p 8000:8000 -v study-mode-data:/data study-mode-api
#
# With no settings the container runs the embedded mode (SQLite in /data, in-process cache,
# bundled sample lessons, development rules). Production settings: docs/OPERATIONS.md.
# The same binary is built and smoke-tested without Docker by scripts/build-static.

ARG RUST_VERSION=1

# --- build: Alpine's toolchain targets x86_64-unknown-linux-musl natively ---------------------
FROM rust:${RUST_VERSION}-alpine AS build
# musl-dev: C headers and crt for ring and the bundled SQLite (both compile C code).
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY migrations ./migrations
COPY src ./src
COPY tools ./tools
# BuildKit cache mounts keep the registry and compiled dependencies between builds, so a code
# change rebuilds only this crate.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl \
 && mkdir -p /out/rootfs/data \
 && cp target/x86_64-unknown-linux-musl/release/study-mode-api /out/study-mode-api
# Fail the build if anything slipped in that needs a dynamic loader (e.g. glibc or OpenSSL).
RUN readelf -d /out/study-mode-api > /tmp/dynamic \
 && if grep -q NEEDED /tmp/dynamic; then echo "study-mode-api is not static" >&2; exit 1; fi

# --- run: distroless/static has CA certificates, tzdata, /etc/passwd with `nonroot` (65532) ---
FROM gcr.io/distroless/static-debian12:nonroot
WORKDIR /app
COPY --from=build /out/study-mode-api /app/study-mode-api
COPY sample-book /app/sample-book
# The volume must exist and belong to the runtime user before it is mounted (no shell here to
# mkdir/chown). Copying the folder's parent makes `data` a copied entry, so --chown reaches it.
COPY --from=build --chown=65532:65532 /out/rootfs/ /
ENV HOST=0.0.0.0 \
    PORT=8000 \
    DATABASE_URL=sqlite:/data/study_mode.db \
    CONTENT_DIR=/app/sample-book \
    LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8000
USER 65532:65532
# No HEALTHCHECK: distroless has no shell or curl. Orchestrators probe GET /health (liveness)
# and GET /health/ready (readiness); see docs/OPERATIONS.md.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/study-mode-api"]
CMD ["serve"]
