# syntax=docker/dockerfile:1
# csr-signer controller image: `docker build -t csr-signer:latest .`
# Pin NODE_IMAGE by digest in production (node:24-bookworm-slim@sha256:...).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# A C++ toolchain for pkcs11js's native module (the PKCS#11 binding); in this stage only.
RUN apt-get update \
  && apt-get install -y --no-install-recommends g++ make python3 \
  && rm -rf /var/lib/apt/lists/*
# node-gyp builds against the image's own Node headers (/usr/local/include/node), downloading none.
ENV npm_config_nodedir=/usr/local
# Dependencies first, so that this layer is reused while only src/ changes. Install scripts off,
# then only pkcs11js's (node-gyp rebuild) runs; esbuild finds its binary in its
# @esbuild/<platform> dependency and needs no script.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-fund --no-audit --loglevel=error \
  && npm rebuild pkcs11js --no-fund --no-audit --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY hack/bundle.mjs ./hack/bundle.mjs
COPY src ./src
# Type-check src/, then bundle the CLI and its npm dependencies into dist/csr-signer.mjs (hack/bundle.mjs).
RUN npm run build

FROM ${NODE_IMAGE}
WORKDIR /app
ENV NODE_ENV=production
# Only what runs: the one-file bundle (no node_modules: it holds the code of the dependencies it
# uses), the PKCS#11 worker thread's script and pkcs11js's compiled module beside it (both loaded
# only for a PKCS#11 CA key; no compiler in this image), and the source map, read only under
# `node --enable-source-maps`.
COPY --from=build --chown=0:0 /app/dist/csr-signer.mjs /app/dist/csr-signer.mjs.map /app/dist/pkcs11-worker.mjs /app/dist/pkcs11.node ./dist/
# Files owned by root and not writable by the process; matches the Deployment's runAsUser.
USER 65532:65532
EXPOSE 8080 8081
# --optimize-for-size: V8 favours memory over speed; above all its young generation stays at ~3 MiB
# instead of growing to 128 MiB (Node 24, measured), so the garbage of listing every CSR at start does
# not leave the heap, and RSS, at a high-water mark: with 10,000 cached CSRs 106-117 MiB RSS instead of
# 224-276 MiB, at a CPU cost within the noise on a quiet machine (+14 % in one loaded-machine series;
# BENCHMARKS.md). The benchmarks read these flags here.
ENTRYPOINT ["node", "--optimize-for-size", "dist/csr-signer.mjs"]
