# study-mode-api: a static (musl, rustls-only) binary in a FROM-scratch image, running as
# non-root (65532). For machines that can pull the Rust image:
#
#   docker build -t study-mode-api:latest .
#   docker run --rm -p 8000:8000 -v study-mode-data:/data study-mode-api:latest
#
# Offline (no registry), the same runtime image is built from a prebuilt binary by
# scripts/build-image (Dockerfile.prebuilt); scripts/test.d/70-image.sh builds, runs and
# stops it in CI. With no settings the container runs the embedded mode (SQLite in /data,
# in-process cache, the sample book compiled into the binary, development rules). Production
# settings: docs/OPERATIONS.md.
#
# No `# syntax=` line: it would make BuildKit pull a frontend image. The cache mounts below
# need BuildKit (default since Docker 23).

ARG RUST_VERSION=1

# --- build: Alpine's toolchain targets x86_64-unknown-linux-musl natively ---------------------
FROM rust:${RUST_VERSION}-alpine AS build
# musl-dev: C headers and crt for ring, mimalloc and the bundled SQLite (all compile C code);
# ca-certificates: the bundle copied into the runtime image.
RUN apk add --no-cache musl-dev ca-certificates
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY migrations ./migrations
COPY sample-book ./sample-book
COPY src ./src
COPY static ./static
COPY openapi ./openapi
COPY tools ./tools
# BuildKit cache mounts keep the registry and compiled dependencies between builds, so a code
# change rebuilds only this crate.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl --bin study-mode-api \
 && cp target/x86_64-unknown-linux-musl/release/study-mode-api /out-study-mode-api
# Fail the build if anything slipped in that needs a dynamic loader (e.g. glibc or OpenSSL).
RUN readelf -d /out-study-mode-api > /tmp/dynamic \
 && if grep -q NEEDED /tmp/dynamic; then echo "study-mode-api is not static" >&2; exit 1; fi
# The runtime files, laid out as Dockerfile.prebuilt's context (scripts/build-image).
COPY docker/rootfs /ctx/rootfs
RUN mkdir -p /ctx/rootfs/etc/ssl/certs /ctx/rootfs/tmp /ctx/owned/data /ctx/owned/home/nonroot \
 && cp /etc/ssl/certs/ca-certificates.crt /ctx/rootfs/etc/ssl/certs/ \
 && chmod 1777 /ctx/rootfs/tmp

# --- run: the same content as Dockerfile.prebuilt --------------------------------------------
FROM scratch
COPY --from=build /ctx/rootfs/ /
# The volume must exist and belong to the runtime user before it is mounted (no shell here to
# mkdir/chown). Copying the folder's parent makes `data` a copied entry, so --chown reaches it.
COPY --from=build --chown=65532:65532 /ctx/owned/ /
COPY --from=build /out-study-mode-api /app/study-mode-api
WORKDIR /app
ENV HOST=0.0.0.0 \
    PORT=8000 \
    DATABASE_URL=sqlite:/data/study_mode.db \
    LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8000
USER 65532:65532
# No HEALTHCHECK: no shell or curl in the image. Orchestrators probe GET /health (liveness)
# and GET /health/ready (readiness); see docs/OPERATIONS.md.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/study-mode-api"]
CMD ["serve"]
