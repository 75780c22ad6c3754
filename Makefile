# The two commands a newcomer needs (both do all set-up on a fresh machine):
#   make demo   - build the local cluster if needed, start it, run graylane's demo on it
#   make test   - lint, type-check, unit tests and the integration tier on a real local cluster
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit integration cluster-build prometheus crds gotypes manifests clean bench

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

cluster-build: $(STAMP)
	$(BIN)/graylane cluster build

# Debian bookworm's Prometheus 2.42.0, for the analysis tests (the tests fetch it too when missing).
prometheus: $(STAMP)
	$(BIN)/python -m graylane.cluster.prometheus

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy src
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test: $(STAMP) cluster-build prometheus lint
	$(BIN)/pytest tests -q

demo: $(STAMP) cluster-build
	$(BIN)/graylane demo

crds: $(STAMP)
	$(BIN)/python -m graylane.api.crdgen

# The Go type graph of PodTemplateSpec the pod-template hash walks (api/podtemplatehash.py), made from
# the k8s.io/api module (in the module cache the cluster build fills), like the CRDs a committed,
# generated file; test_podtemplate_hash.py checks it is current.
GOTYPES_ENV := GOMODCACHE=$(HOME)/.cache/graylane/go/mod GOCACHE=$(HOME)/.cache/graylane/go/build GOFLAGS=-mod=readonly GOTOOLCHAIN=local
gotypes: cluster-build
	cd tools/gotypes && $(GOTYPES_ENV) go run . > ../../src/graylane/api/data/podtemplatespec.gotypes.json

# The chart's CRDs and deploy/manifests/graylane.yaml (helm template; helm is built into the cache once).
manifests: $(STAMP) crds
	$(BIN)/python -m graylane.cluster.tools manifests

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
