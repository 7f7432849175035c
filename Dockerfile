# syntax=docker/dockerfile:1
#
# The `gatewise` server image.
#
#   docker build -t gatewise .
#   docker run --rm -p 8787:8787 gatewise
#
# Needs BuildKit (Docker's default builder since 23.0): cache mounts, COPY --chmod.
#
# Two stages: the build needs the Rust toolchain and a C compiler (mimalloc and aws-lc-rs,
# the crypto under rustls, compile C); the image that runs needs only glibc, the CA
# certificates and the binary.

# --- build -------------------------------------------------------------------------------
# The full image: it already has gcc, g++, make and pkg-config. Bookworm, so the binary
# links against the same glibc as the runtime stage below.
FROM rust:1.95-bookworm AS build
WORKDIR /src

# The whole workspace: `-p gateway-http` still reads every member's Cargo.toml (the
# bindings, benches and tests). .dockerignore leaves out target/, node_modules, .git.
COPY . .

# Cache mounts keep the crates.io downloads and the compiled dependencies between builds;
# they are not part of any layer, so the binary is copied out of target/ in the same step.
# --locked: build exactly the versions in Cargo.lock. The release profile is fat LTO with
# one codegen unit: slow to build (several minutes on 2 cores), fastest to run.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gateway-http --bin gatewise \
    && install -m 0755 target/release/gatewise /usr/local/bin/gatewise

# --- run ---------------------------------------------------------------------------------
# Debian slim rather than distroless: the health check below needs bash (no curl is
# installed; bash's /dev/tcp is enough).
FROM debian:bookworm-slim AS runtime

# ca-certificates: upstream TLS (rustls) verifies against the system's roots.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 gatewise \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin gatewise

COPY --from=build /usr/local/bin/gatewise /usr/local/bin/gatewise
COPY --chmod=0755 deploy/healthcheck.sh /usr/local/bin/gatewise-healthcheck

# A numeric user, so that Kubernetes' runAsNonRoot can check it is not root. The server
# writes nothing to disk: the root filesystem may be read-only.
USER 10001:10001

EXPOSE 8787

# Asks `GET /health` on 127.0.0.1:$GATEWISE_PORT (8787 unless set). Kubernetes ignores it
# and uses its own probes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/gatewise-healthcheck"]

# gatewise is PID 1 and handles SIGTERM itself: it stops accepting connections and
# finishes the requests in flight. Give it time (`docker stop -t`, compose's
# stop_grace_period, Kubernetes' terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["gatewise"]
# Bind every interface inside the container. With provider credentials in the registry,
# a non-loopback bind needs gateway keys in it (or --allow-unauthenticated).
CMD ["serve", "--host", "0.0.0.0"]
