# syntax=docker/dockerfile:1.7
#
# enate-bridge container image.
#
#   docker build -t enate-bridge .                   # the bridge (default target)
#   docker build -t enate-bridge-worker --target worker .   # the example consumer
#
# Dependency caching: BuildKit cache mounts, not cargo-chef.
# - The cargo registry and target/ live in cache mounts, so a rebuild after a
#   source change recompiles only this crate, exactly as a local `cargo build`
#   does; cargo-chef would have to be compiled into the builder first (minutes)
#   and rebuilds every dependency whenever Cargo.lock changes at all.
# - The bridge and the worker example share one target/ cache, so building the
#   second target reuses every compiled dependency of the first.
# - The cost: the cache lives on the build host, not in image layers. A CI that
#   builds on throw-away runners should export it (buildx --cache-to) or accept
#   a cold build.

ARG RUST_VERSION=1.95

# ---------------------------------------------------------------------------
# Builder: compiles the bridge. Everything is copied in (see .dockerignore);
# the cache mounts, not the layer cache, make rebuilds incremental.
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin enate-bridge \
 && install -D -m 0755 target/release/enate-bridge /out/usr/local/bin/enate-bridge \
 && install -d -m 0750 /out/var/lib/enate-bridge/spool

# ---------------------------------------------------------------------------
# Builder for the example consumer (worker/, a package of its own: it compiles
# only its own dependencies, most of them already in the cache from the bridge).
FROM build AS build-worker
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p enate-bridge-worker \
 && install -D -m 0755 target/release/worker /out-worker/usr/local/bin/worker

# ---------------------------------------------------------------------------
# Example consumer: reads AMQP_URL and QUEUE (default enate.tickets.resolved).
FROM gcr.io/distroless/cc-debian12:nonroot AS worker
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="enate-bridge-worker" \
      org.opencontainers.image.description="Example consumer of the CloudEvents that enate-bridge publishes to RabbitMQ." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build-worker /out-worker/usr/local/bin/worker /usr/local/bin/worker
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/worker"]

# ---------------------------------------------------------------------------
# Runtime: distroless (glibc + CA certificates, no shell, no package manager),
# running as the image's `nonroot` user, given by number (65532) so that
# Kubernetes' runAsNonRoot can verify it. Declared last, so a plain
# `docker build .` produces the bridge.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="enate-bridge" \
      org.opencontainers.image.description="Verifies Enate webhooks, normalizes them into CloudEvents and publishes them to RabbitMQ with publisher confirms." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT"

# The binary stays owned by root (the runtime user cannot replace it); the
# spool directory belongs to the runtime user, and a named volume mounted
# there starts with this ownership.
COPY --from=build /out/usr/local/bin/enate-bridge /usr/local/bin/enate-bridge
COPY --from=build --chown=65532:65532 /out/var/lib/enate-bridge/ /var/lib/enate-bridge/

# The working directory is the spool's parent, so the bridge's relative
# default spool directory (./spool) lands on the volume below without any
# extra setting.
WORKDIR /var/lib/enate-bridge
VOLUME ["/var/lib/enate-bridge/spool"]

USER 65532:65532

# 8080: webhook ingress (POST /webhooks/{Webhook}).
# 9091: admin (/metrics, /healthz, /readyz); keep it off the public ingress.
EXPOSE 8080 9091
# The binary's admin.bind default is loopback (safe on a host); in a container
# the network namespace is the boundary, and Prometheus and probes come from outside it.
ENV ENATE_BRIDGE__ADMIN__BIND=0.0.0.0:9091

# `healthcheck` asks the admin listener's /readyz (on 127.0.0.1, at the port
# the container's configuration gives) and exits 0 when the bridge is ready.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/enate-bridge", "healthcheck"]

# Configuration comes from ENATE_BRIDGE__<SECTION>__<KEY> variables.
# `docker run IMAGE check-config` replaces the default `serve`.
ENTRYPOINT ["/usr/local/bin/enate-bridge"]
CMD ["serve"]
