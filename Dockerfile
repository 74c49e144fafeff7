# syntax=docker/dockerfile:1
# Takarir container image: a slim Debian bookworm runtime with the takarir binary, the ONNX
# Runtime library beside it, models/ (every model directory present at build time), the samples,
# a non-root user, /data as the volume and a health check. The image holds exactly what the
# release archive holds (scripts/release makes both), unpacked in /opt/takarir.
#
#   docker build -t takarir .
#       compiles from source in the Rust image (needs crates.io and PyPI for the onnxruntime
#       wheel; the cargo build took 35 minutes on two busy cores)
#   scripts/release && docker build --build-arg TAKARIR_DIST=release -t takarir .
#       packs the archive scripts/release left in dist/ instead (built on this machine: its
#       BUILD_INFO names the glibc it needs, which must not be newer than bookworm's 2.36)
#   docker run -p 8080:8080 -v takarir-data:/data takarir
#
# Podman: add `--format docker` (the OCI image format has no HEALTHCHECK), and spell out
# `--build-arg TAKARIR_DIST=source` (buildah 1.28 skips a stage named by an ARG's default value
# and fails with "dist-source: image not known"). scripts/container-check
# builds this file with podman and checks the image without a registry or `podman run`.
ARG RUST_IMAGE=docker.io/library/rust:1-slim-bookworm
ARG DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
# source: compile here; release: unpack dist/takarir-VERSION-linux-x86_64.tar.gz.
ARG TAKARIR_DIST=source

# ---- the release tree, compiled from source ---------------------------------------------------
FROM ${RUST_IMAGE} AS dist-source
# scripts/setup puts the onnxruntime wheel (the library the engine loads) into a venv; Python is
# only a build tool here and stays out of the final image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock README.md CHANGELOG.md LICENSE ./
COPY crates crates
COPY scripts scripts
COPY models models
COPY samples samples
COPY docs docs
COPY contrib contrib
# No .git in the build context: the commit and the archive's timestamps come from build args.
ARG SOURCE_COMMIT=unknown
ARG SOURCE_DATE_EPOCH=0
RUN TAKARIR_COMMIT=$SOURCE_COMMIT SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH scripts/release --out /dist \
 && mkdir /opt/takarir \
 && tar -xzf /dist/takarir-*-linux-x86_64.tar.gz --strip-components=1 -C /opt/takarir

# ---- the release tree, from an archive scripts/release made -----------------------------------
FROM ${DEBIAN_IMAGE} AS dist-release
COPY dist/ /dist/
RUN set -e; cd /dist; \
    archives=$(ls takarir-*-linux-x86_64.tar.gz 2>/dev/null | grep -v -- '-debug-' || true); \
    [ "$(echo "$archives" | wc -w)" = 1 ] \
      || { echo "dist/ must hold exactly one release archive; found: ${archives:-none}" >&2; exit 1; }; \
    if [ -f "$archives.sha256" ]; then sha256sum -c "$archives.sha256"; fi; \
    mkdir /opt/takarir; \
    tar -xzf "$archives" --strip-components=1 -C /opt/takarir

FROM dist-${TAKARIR_DIST} AS dist

# ---- the runtime image --------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE}
LABEL org.opencontainers.image.title="Takarir" \
      org.opencontainers.image.description="Self-hostable, privacy-first image caption generator (Indonesian and English)" \
      org.opencontainers.image.licenses="Apache-2.0"
# ca-certificates: TLS to S3/GCS, PostgreSQL, SMTP, webhooks; curl: the health check.
# libstdc++6 (ONNX Runtime) is already in the base image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin takarir \
 && install -d -o takarir -g takarir -m 0700 /data
COPY --from=dist /opt/takarir /opt/takarir
# The binary finds the library and models/default beside its real path, through the link.
RUN ln -s /opt/takarir/takarir /usr/local/bin/takarir
ENV TAKARIR_LISTEN=0.0.0.0:8080 \
    TAKARIR_DATA_DIR=/data \
    HF_HOME=/data/huggingface
WORKDIR /data
USER takarir
VOLUME ["/data"]
EXPOSE 8080
# Plain HTTP on the listen port (TLS is normally the reverse proxy's); HTTPS when the server
# itself has tls_cert/tls_key.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD port=${TAKARIR_LISTEN##*:}; \
      curl -fsS -o /dev/null --max-time 4 "http://127.0.0.1:$port/api/v1/health" \
      || curl -fsSk -o /dev/null --max-time 4 "https://127.0.0.1:$port/api/v1/health"
ENTRYPOINT ["takarir"]
CMD ["serve"]
