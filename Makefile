# csr-signer. `make run` and `make test` work from a fresh clone: they bootstrap
# Node 24 (when the system's is older than 22.19), the npm dependencies and the
# test control plane (kube-apiserver, kubectl and etcd built from Go modules).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Everything heavy lives outside the work tree, keyed by version, reused across runs.
export CSR_SIGNER_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/csr-signer
NODE_VERSION := 24.21.0

# Node first on PATH for every target: the system's when new enough, else Node 24 from the npm registry.
NODE_BIN_DIR := $(shell hack/ensure-node.sh $(NODE_VERSION))
ifeq ($(NODE_BIN_DIR),)
$(error could not provide Node >= 22.19 (see the message above))
endif
export PATH := $(NODE_BIN_DIR):$(PATH)
# pkcs11js (a native module) compiles against that Node's own headers (include/node beside bin/),
# so node-gyp downloads nothing.
NODE_HEADERS_DIR := $(abspath $(NODE_BIN_DIR)/..)
ifneq ($(wildcard $(NODE_HEADERS_DIR)/include/node/node.h),)
export npm_config_nodedir := $(NODE_HEADERS_DIR)
endif

# Where hack/testbin/build.sh puts (or finds) the control plane binaries.
TESTBIN_DIRS := $(shell hack/testbin/build.sh --print-dir)
export KUBE_BIN_DIR := $(patsubst KUBE_BIN_DIR=%,%,$(filter KUBE_BIN_DIR=%,$(TESTBIN_DIRS)))
export ETCD_BIN_DIR := $(patsubst ETCD_BIN_DIR=%,%,$(filter ETCD_BIN_DIR=%,$(TESTBIN_DIRS)))
export ISTIO_BIN_DIR := $(patsubst ISTIO_BIN_DIR=%,%,$(filter ISTIO_BIN_DIR=%,$(TESTBIN_DIRS)))
export HELM_BIN_DIR := $(patsubst HELM_BIN_DIR=%,%,$(filter HELM_BIN_DIR=%,$(TESTBIN_DIRS)))
export PROMTOOL_BIN_DIR := $(patsubst PROMTOOL_BIN_DIR=%,%,$(filter PROMTOOL_BIN_DIR=%,$(TESTBIN_DIRS)))

# SoftHSM2, the PKCS#11 token of the HSM tests: the system's, else the Debian packages unpacked into the
# cache by hack/softhsm2/ensure.sh (`make softhsm2`).
SOFTHSM2_DIRS := $(shell hack/softhsm2/ensure.sh --print-dir)
export SOFTHSM2_MODULE := $(patsubst SOFTHSM2_MODULE=%,%,$(filter SOFTHSM2_MODULE=%,$(SOFTHSM2_DIRS)))
export SOFTHSM2_UTIL := $(patsubst SOFTHSM2_UTIL=%,%,$(filter SOFTHSM2_UTIL=%,$(SOFTHSM2_DIRS)))

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-28s %s\n", $$1, $$2}'

node_modules/.installed: package.json package-lock.json
	npm ci --no-fund --no-audit --loglevel=error
	@touch $@

.PHONY: deps
deps: node_modules/.installed ## Install npm dependencies (npm ci)

.PHONY: testbin
testbin: ## Build (or reuse) kube-apiserver, kubectl and etcd in $CSR_SIGNER_CACHE (default ~/.cache/csr-signer)
	hack/testbin/build.sh etcd apiserver kubectl

.PHONY: testbin-controller-manager
testbin-controller-manager: ## Build kube-controller-manager too (benchmark peer only)
	hack/testbin/build.sh controller-manager

.PHONY: build
build: deps ## Type-check src/ and bundle the CLI with its dependencies into dist/csr-signer.mjs (what the image runs)
	npm run --silent build

.PHONY: bundle-analyze
bundle-analyze: deps ## Build dist/csr-signer.mjs and list what each package and file adds to it
	node hack/bundle.mjs --analyze

.PHONY: lint
lint: deps ## Type-check, lint (typescript-eslint) and check formatting (Prettier)
	npx tsc -p tsconfig.json --noEmit
	npx eslint .
	npx prettier --check .

.PHONY: softhsm2
softhsm2: ## Provide SoftHSM2 (system package, else its .debs unpacked into $CSR_SIGNER_CACHE, else apt-get install as root)
	hack/softhsm2/ensure.sh >/dev/null

.PHONY: format
format: deps ## Rewrite files with Prettier
	npx prettier --write .

.PHONY: x509-oracle
x509-oracle: ## Build (or reuse) the Go helper of the parser-differential test in $CSR_SIGNER_CACHE (default ~/.cache/csr-signer)
	hack/testbin/build.sh x509-oracle

.PHONY: promtool
promtool: ## Build (or reuse) Prometheus' promtool in $CSR_SIGNER_CACHE, for the alert rule tests (cold: 15-70 min, 67 on a loaded shared 2-core machine)
	hack/testbin/build.sh promtool

.PHONY: test-unit
test-unit: deps x509-oracle softhsm2 promtool ## Unit tests (pure logic and PKI, with openssl and Go crypto/x509 cross-checks) under c8 coverage
	npm run --silent test:unit

.PHONY: test-differential
test-differential: deps x509-oracle ## Only the parser-differential test; longer: CSR_SIGNER_DIFFERENTIAL_RUNS=200000 (and _SEED)
	npx mocha --config .mocharc.json test/unit/pki/parser-differential.test.ts

.PHONY: test-integration
test-integration: deps testbin testbin-helm monitoring-crds softhsm2 ## Integration tests against a real kube-apiserver and etcd
	npm run --silent test:integration

# The Prometheus Operator's ServiceMonitor and PrometheusRule CRDs (its Go module, pinned), which the
# chart and manifests/monitoring are dry-run against; cached in $CSR_SIGNER_CACHE.
export PROMETHEUS_OPERATOR_CRDS_DIR := $(patsubst PROMETHEUS_OPERATOR_CRDS_DIR=%,%,$(shell hack/prometheus-operator-crds.sh --print-dir))

.PHONY: monitoring-crds
monitoring-crds: ## Download (or reuse) the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs from its Go module into $CSR_SIGNER_CACHE
	hack/prometheus-operator-crds.sh

.PHONY: testbin-helm
testbin-helm: ## Build (or reuse) helm from its Go module in $CSR_SIGNER_CACHE (cold: minutes; 25 min on a busy 2-core machine)
	hack/testbin/build.sh helm

.PHONY: chart-lint
chart-lint: testbin-helm ## helm lint --strict charts/csr-signer with its default and its full values (ci/full-values.yaml)
	$(HELM_BIN_DIR)/helm lint --strict charts/csr-signer
	$(HELM_BIN_DIR)/helm lint --strict charts/csr-signer --values charts/csr-signer/ci/full-values.yaml

.PHONY: testbin-istio
testbin-istio: ## Build (or reuse) Istio's pilot-discovery and pilot-agent in $CSR_SIGNER_CACHE (cold: 10-30 min)
	hack/testbin/build.sh istio

.PHONY: test-istio
test-istio: deps testbin testbin-istio ## The Istio end-to-end tier alone: real istiod and pilot-agents against csr-signer
	npm run --silent test:istio

# The controller image: podman (installed by hack/image/ensure-tools.sh when missing) with the repository's
# hack/image/containers.conf. IMAGE_BASE=auto|registry|local picks the Dockerfile's pinned registry bases
# or the local Debian + Node bases (hack/image/local-base.sh, cached in $CSR_SIGNER_CACHE/image-base).
export CSR_SIGNER_IMAGE ?= localhost/csr-signer:dev
# The release name manifests/base and the chart use (localhost/csr-signer:<package.json version>):
# `make image` tags the same image with it too.
CSR_SIGNER_RELEASE_IMAGE := $(shell hack/image/release-image.sh)
export CONTAINERS_CONF ?= $(CURDIR)/hack/image/containers.conf

.PHONY: image
image: ## Build the controller image with podman, tagged $CSR_SIGNER_IMAGE and the release name manifests/base uses (registry bases when reachable, else local Debian + Node bases)
	hack/image/build.sh $(CSR_SIGNER_IMAGE) $(NODE_VERSION) $(CSR_SIGNER_RELEASE_IMAGE)

.PHONY: test-image
test-image: deps testbin image ## Build the image, then run it (read-only, uid 65532) against the test API server: ready, issues a certificate
	npm run --silent test:image

.PHONY: test
test: lint test-unit test-integration test-image test-istio ## Everything: lint, unit, integration, image and Istio end-to-end tests

.PHONY: bench-sign
bench-sign: deps softhsm2 ## Issuance per CPU-second on one core (EC, RSA): csr-signer beside Go's crypto/x509 (hack/bench/x509-sign, needs Go), the node:crypto floor and naive pkijs; the CA key in SoftHSM2 (PKCS#11) vs in memory
	$(if $(shell command -v taskset),taskset -c 0) node --import tsx bench/sign.bench.ts

.PHONY: bench-hot-path
bench-hot-path: deps ## The controller's CPU per certificate in-process (cache, queue, worker, reconcile, issuance, logs, metrics, Events; no API server) beside the Node floor's part: csr-signer's own work apart from HTTP and the API server (knobs: bench/hot-path.bench.ts)
	node --import tsx bench/hot-path.bench.ts

.PHONY: bench-controller
bench-controller: deps testbin testbin-controller-manager ## Controller on a real API server: 1,000 Istio CSRs (throughput, latency) vs kube-controller-manager's signer (3 interleaved rounds after 1,000 warm-up certificates, medians), 1,000 PodCertificateRequests, RSS of the bundle with 10,000 CSRs (knobs: bench/controller.bench.ts; A/B of two bundles, the Node floor and BENCH_PERF=DIR, CPU by part with Linux perf: README, "Two commands")
	node --import tsx bench/controller.bench.ts

.PHONY: bench-memory
bench-memory: deps testbin ## Controller RSS (the bundle) with 200 + 200 CSRs padded to 1.3 MB (foreign and ours), while running and across a restart
	node --import tsx bench/memory.bench.ts

.PHONY: bench-failover
bench-failover: deps testbin ## Two replicas (the bundle) on one Lease: SIGKILL the leader, time until the other holds the Lease and issues
	node --import tsx bench/failover.bench.ts

.PHONY: bench-status-write
bench-status-write: deps testbin ## kube-apiserver's and etcd's CPU per certificate write: a merge patch of a CSR's /status against the PUT the controller sends when it may (BENCH_ROUNDS=4 rounds each way of BENCH_WRITES=1000, 20 in flight)
	node --import tsx bench/status-write.bench.ts

.PHONY: bench
bench: bench-sign bench-hot-path bench-controller bench-memory bench-failover bench-status-write ## All benchmarks (results go to BENCHMARKS.md by hand)

.PHONY: soak
soak: deps testbin ## Fault soak (not in `make test`): 2 controller processes under leader election, CSRs at 50/s, seeded faults, the ledger table for RELIABILITY.md (SOAK_SECONDS=600, SOAK_SEED, SOAK_RATE)
	node --import tsx bench/soak/soak.ts

.PHONY: run
run: deps testbin ## Local control plane, demo tenants and the signer (from src/ under tsx), issuing certificates
	node --import tsx hack/run-demo.ts

.PHONY: clean
clean: ## Remove build output (the cache in $CSR_SIGNER_CACHE stays)
	rm -rf dist coverage
