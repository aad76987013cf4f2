# csr-signer controller image. `make image` builds it (podman; hack/image/build.sh): from the registry
# bases below where a registry is reachable, or (IMAGE_BASE=local, automatic when no registry answers) from local bases made of Debian's
# mirror and the npm registry only (hack/image/local-base.sh). By hand:
#   docker build --build-arg CSR_SIGNER_COMMIT=$(git rev-parse --short=12 HEAD) [--secret id=npm-ca,src=CA.pem] .
# Both bases are fully qualified and pinned by digest; refresh the pair together (Node 24 in both,
# so pkcs11js's native module matches the Node that loads it).
# Build stage: Node 24 with npm and a C++ toolchain (g++, make, python3: node-gyp for pkcs11js).
ARG BUILD_IMAGE=docker.io/library/node:24-bookworm@sha256:33cf7f057918860b043c307751ef621d74ac96f875b79b6724dcebf2dfd0db6d
# Runtime: Node 24 only (no npm, no shell, no compiler), non-root uid 65532.
ARG NODE_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot@sha256:14d42e2511532589a7c7e01a753667a74fcc96266e137e8125006b87b0c32d0a

FROM ${BUILD_IMAGE} AS build
WORKDIR /app
# node-gyp builds against the image's own Node headers (/usr/local/include/node), downloading none.
ENV npm_config_nodedir=/usr/local
# Dependencies first, so that this layer is reused while only src/ changes. Install scripts off,
# then only pkcs11js's (node-gyp rebuild) runs; esbuild finds its binary in its
# @esbuild/<platform> dependency and needs no script. The secret npm-ca is an extra CA bundle for
# the npm registry (a TLS-inspecting proxy's, the builder's NODE_EXTRA_CA_CERTS or npm cafile): a
# build-time mount only, never in a layer; absent when there is none.
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm-ca \
  if [ -s /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi \
  && npm ci --ignore-scripts --no-fund --no-audit --loglevel=error \
  && npm rebuild pkcs11js --no-fund --no-audit --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY hack/bundle.mjs ./hack/bundle.mjs
COPY src ./src
# `csr-signer --version` names this commit (the build context has no .git).
ARG CSR_SIGNER_COMMIT=unknown
# Type-check src/, then bundle the CLI and its npm dependencies into dist/csr-signer.mjs (hack/bundle.mjs).
RUN CSR_SIGNER_COMMIT="${CSR_SIGNER_COMMIT}" npm run build

FROM ${NODE_IMAGE}
WORKDIR /app
ENV NODE_ENV=production
# node on the PATH of either base: distroless keeps it in /nodejs/bin, the local base in /usr/local/bin.
ENV PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin
# Only what runs: the one-file bundle (no node_modules: it holds the code of the dependencies it
# uses), the PKCS#11 worker thread's script and pkcs11js's compiled module beside it (both loaded
# only for a PKCS#11 CA key; no compiler in this image), and the source map, read only under
# `node --enable-source-maps`.
COPY --from=build --chown=0:0 /app/dist/csr-signer.mjs /app/dist/csr-signer.mjs.map /app/dist/pkcs11-worker.mjs /app/dist/pkcs11.node ./dist/
# Files owned by root and not writable by the process; matches the Deployment's runAsUser. The process
# writes nothing: the root filesystem can be (and in manifests/base is) read-only.
USER 65532:65532
EXPOSE 8443 8081
# --max-semi-space-size=8: V8's young generation stops at 8 MiB semi-spaces instead of growing to
# 128 MiB (Node 24, measured), so the garbage of listing every CSR at start does not leave the heap,
# and RSS, at a high-water mark (with 10,000 cached CSRs 120-137 MiB as deployed; 224-276 MiB without
# a bound). It replaced --optimize-for-size, which bounded the young generation too but also cut the
# optimising compiler's budgets. 8 rather than 2: with the client limit raised, 2 MiB spent 1.07x
# (seventh pass) and 1.22x (eighth pass, a noisier host) the CPU per certificate of 8 (fewer
# scavenges; BENCHMARKS.md, `make bench-controller`); not measured at the default limit.
# --expose-gc: the controller asks for a scavenge after every 8 MiB of response bodies
# (src/kube/response-garbage.ts). Without it, the dropped chunks of a relist of padded CSRs piled up
# to +80 MiB over idle at `make bench-memory`'s restart with 8 MiB semi-spaces (+39 MiB with it; its
# budget is 50 MiB). The flag defines a global gc() and grants nothing outside the process: only code
# already running in it could call it, the bundle calls it in that one place and never evaluates
# input. The options it passes are V8's gc extension's, not a Node API: test/image/image.test.ts
# (on this image's Node) and test/unit/kube/response-garbage.test.ts fail on a Node that drops them.
# --liftoff-only: WebAssembly stays on V8's baseline compiler; the only module is
# undici's HTTP/1.1 parser (llhttp), whose optimised recompilation held ~10 MiB of RSS for good
# (idle 104 MiB instead of 94, third pass, with 2 MiB semi-spaces), at no CPU cost we could measure. The benchmarks read these flags here.
ENTRYPOINT ["node", "--max-semi-space-size=8", "--expose-gc", "--liftoff-only", "dist/csr-signer.mjs"]
