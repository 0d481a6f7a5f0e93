# ocular in one image: the binary, ONNX Runtime and the converted models, non-root, data on a
# volume. Two ways to build (docs/DEPLOY.md, "Container"):
#
#   docker build -t ocular .                      # from source: Rust build + `ocular models fetch`
#   scripts/container-smoke.sh                    # here, without an image registry: a Debian base
#                                                 # made by mmdebstrap, the host-built binary and
#                                                 # models (target `prebuilt`), run under podman
#
# Models are baked in (fetched at build time, sha256-pinned), so a container starts without
# network access and a read-only root filesystem works; the data directory is the only state.

ARG BUILD_BASE=rust:1.95-bookworm
ARG RUNTIME_BASE=debian:bookworm-slim

# --- from source -----------------------------------------------------------------------------
FROM ${BUILD_BASE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ocular \
    && ./target/release/ocular models fetch --models-dir /src/models \
    && rm -rf /src/models/.cache

# --- what every final image shares ---------------------------------------------------------------
FROM ${RUNTIME_BASE} AS runtime-base
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin ocular \
    && mkdir -p /data /opt/ocular && chown ocular /data
ENV OCULAR_HOST=0.0.0.0 \
    OCULAR_PORT=8000 \
    OCULAR_DATA_DIR=/data \
    OCULAR_MODELS_DIR=/opt/ocular/models \
    OCULAR_PRELOAD=true
EXPOSE 8000
VOLUME ["/data"]
# Ready, not just alive: 503 until the models are loaded (`/health/ready`). bash's /dev/tcp
# keeps curl out of the image.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${OCULAR_PORT:-8000} && printf 'GET /health/ready HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
USER ocular
WORKDIR /data
ENTRYPOINT ["/usr/local/bin/ocular"]
CMD ["serve"]

# --- host-built binary and models (scripts/container-smoke.sh) -----------------------------------
FROM runtime-base AS prebuilt
COPY target/release/ocular /usr/local/bin/ocular
COPY models/ /opt/ocular/models/

# --- the default: built from source --------------------------------------------------------------
FROM runtime-base AS runtime
COPY --from=build /src/target/release/ocular /usr/local/bin/ocular
COPY --from=build /src/models/ /opt/ocular/models/
