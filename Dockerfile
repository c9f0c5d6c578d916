# syntax=docker/dockerfile:1.7
#
# colorizer container image (see deploy/README.md).
#
#   docker build -t colorizer:local .
#   docker run --rm -p 8080:8080 --read-only colorizer:local
#
# Stages:
#   ort      fetches libonnxruntime.so from the PyPI onnxruntime wheel, exactly as
#            scripts/fetch-ort.sh does for local builds.
#   build    cargo build --release --locked; the default model (models/colorizer.onnx)
#            and the web page are embedded in the binary.
#   artifacts-source / artifacts-prebuilt
#            the binary and the library from the two stages above (default), or, with
#            --build-arg ARTIFACTS=artifacts-prebuilt, from a build context that holds a
#            host-built `colorizer` and `libonnxruntime.so` (scripts/container-test.sh,
#            where no Rust or Python image can be pulled).
#   runtime  distroless/cc (glibc + libstdc++, no shell, no package manager), non-root,
#            holding only the binary and the ONNX Runtime library.
#
# Multi-arch: every stage runs on the target platform, so `docker buildx build
# --platform linux/arm64` picks the aarch64 wheel (for Graviton Fargate tasks).

# Rust toolchain used for the release build; must be >= rust-version in Cargo.toml.
ARG RUST_VERSION=1.95
# ONNX Runtime shared library version. Must equal ORT_VERSION in scripts/fetch-ort.sh
# (deploy/tests/test_deploy.py checks it): the binary is built against that C API.
ARG ORT_VERSION=1.31.1
ARG PYTHON_VERSION=3.11
# Stage the runtime stage takes the binary and libonnxruntime.so from: artifacts-source
# builds them here (ort and build stages); artifacts-prebuilt copies them from the build
# context (see that stage).
ARG ARTIFACTS=artifacts-source

# ---------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS ort
ARG ORT_VERSION
WORKDIR /ort
# Only the shared library is kept: the wheel's Python bindings are not needed.
RUN pip download --no-cache-dir --disable-pip-version-check --no-deps --only-binary=:all: \
        --dest /tmp/wheel "onnxruntime==${ORT_VERSION}" \
 && python -c 'import glob, sys, zipfile; whl = glob.glob("/tmp/wheel/onnxruntime-*.whl")[0]; lib = "onnxruntime/capi/libonnxruntime.so." + sys.argv[1]; open("/ort/libonnxruntime.so", "wb").write(zipfile.ZipFile(whl).read(lib)); print("extracted", lib, "from", whl)' "${ORT_VERSION}" \
 && rm -rf /tmp/wheel

# ---------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# cmake and nasm build libjpeg-turbo (the turbojpeg crate's bundled C and SIMD sources).
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends cmake=3.25.1-1 nasm=2.16.01-1 \
 && rm -rf /var/lib/apt/lists/*
# .dockerignore keeps target/, virtualenvs, training data and the deploy files out.
COPY . .
# Cache mounts keep the crate registry and the target dir between builds (BuildKit).
# The binary is copied out of the cached target dir; debug info is stripped (symbols
# are kept, so panics still name functions).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin colorizer \
 && mkdir -p /out \
 && strip --strip-debug -o /out/colorizer target/release/colorizer

# ---------------------------------------------------------------------------------------
# The runtime stage copies from `artifacts`, one of these two; BuildKit (and podman) build
# only the stages the chosen one needs.
FROM scratch AS artifacts-source
COPY --from=ort /ort/libonnxruntime.so /artifacts/libonnxruntime.so
COPY --from=build /out/colorizer /artifacts/colorizer

# Build context: a release `colorizer` (built for this image's glibc, e.g. on Debian 12)
# and the matching `libonnxruntime.so` (version ORT_VERSION).
FROM scratch AS artifacts-prebuilt
COPY colorizer libonnxruntime.so /artifacts/

FROM ${ARTIFACTS} AS artifacts

# ---------------------------------------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG ORT_VERSION
LABEL org.opencontainers.image.title="colorizer" \
      org.opencontainers.image.description="HTTP microservice that colorizes grayscale photos (ONNX Runtime)" \
      org.opencontainers.image.licenses="MIT" \
      io.colorizer.onnxruntime.version="${ORT_VERSION}"

COPY --from=artifacts /artifacts/libonnxruntime.so /usr/local/lib/onnxruntime/libonnxruntime.so.${ORT_VERSION}
COPY --from=artifacts /artifacts/colorizer /usr/local/bin/colorizer

# COLORIZER_ORT_LIB is the service's own setting; ORT_DYLIB_PATH is the ort crate's
# fallback. Both name the same file. Everything else keeps the binary's defaults and
# can be overridden at run time (see `colorizer serve --help`).
ENV COLORIZER_HOST=0.0.0.0 \
    COLORIZER_PORT=8080 \
    COLORIZER_LOG_JSON=true \
    COLORIZER_ORT_LIB=/usr/local/lib/onnxruntime/libonnxruntime.so.${ORT_VERSION} \
    ORT_DYLIB_PATH=/usr/local/lib/onnxruntime/libonnxruntime.so.${ORT_VERSION} \
    RUST_LOG=info

# distroless "nonroot" user; numeric so Kubernetes runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
# SIGTERM: readiness goes 503, in-flight requests drain (COLORIZER_DRAIN_TIMEOUT_S), exit 0.
STOPSIGNAL SIGTERM
# No shell in the image: the binary checks itself (GET http://127.0.0.1:$COLORIZER_PORT/healthz,
# port 8080 when unset), so a changed COLORIZER_PORT needs no change here.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/colorizer", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/colorizer"]
CMD ["serve"]
