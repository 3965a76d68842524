# sgrules build. Every set-up step the README's commands need lives here.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
STATICCHECK_VERSION := v0.8.2
ACTIONLINT_VERSION := v1.7.12
LAMBDA_FLAGS := -trimpath -tags lambda.norpc -ldflags="-s -w"
LAMBDA_ENV := GOOS=linux GOARCH=arm64 CGO_ENABLED=0
# FUNCTIONS: each function's directory under functions/ and its template
# LogicalId (build-<LogicalId> is the target sam build runs).
FUNCTIONS := reconcile:ReconcileFunction drift:DriftFunction flowlogs:FlowlogsFunction

export SGRULES_RIE := $(BIN)/aws-lambda-rie

.PHONY: all test vet lint tools build fmt clean bench demo mermaid

# lint and test both need vet: one make run vets once.
all: lint test

## tools: installs the Lambda Runtime Interface Emulator and staticcheck into ./bin
tools: $(BIN)/aws-lambda-rie $(BIN)/staticcheck

$(BIN)/aws-lambda-rie:
	@echo "==> Installing the Lambda Runtime Interface Emulator $(RIE_VERSION) into $(BIN) (first run only: go install downloads and compiles it, a minute or more)"
	GOBIN=$(BIN) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

## mermaid: installs the mermaid npm package and jsdom into build/mermaid (needs node and npm), for the
## test that parses every Mermaid picture with the real parser (it installs them itself when missing)
MERMAID_VERSION := 11.17.2
JSDOM_VERSION := 29.1.1
mermaid: build/mermaid/node_modules/mermaid/package.json

build/mermaid/node_modules/mermaid/package.json:
	npm install --no-audit --no-fund --prefix build/mermaid mermaid@$(MERMAID_VERSION) jsdom@$(JSDOM_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## test: every test (starts moto_server and the RIE itself)
test: vet $(BIN)/aws-lambda-rie
	$(GO) test -count=1 -timeout 20m ./...

vet:
	$(GO) vet ./...

## demo: runs sgrules end to end on this machine (moto_server + the Lambda emulator, no AWS account)
# CGO_ENABLED=0 as for the Lambda builds the demo makes: they share the build cache.
demo: $(BIN)/aws-lambda-rie
	@echo "==> Compiling sgrules and starting the demo (go run; the first run compiles the AWS SDK, a minute or more)"
	CGO_ENABLED=0 $(GO) run ./cmd/sgrules demo

$(BIN)/actionlint:
	GOBIN=$(BIN) $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

## lint-workflows: actionlint on the example GitHub Actions workflows
.PHONY: lint-workflows
lint-workflows: $(BIN)/actionlint
	$(BIN)/actionlint examples/ci/*.yml

## lint: gofmt, go vet, staticcheck, cfn-lint, actionlint
lint: vet $(BIN)/staticcheck lint-workflows
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(BIN)/staticcheck ./...
	cfn-lint template.yaml template-target.yaml

## build: every Lambda bootstrap (linux/arm64) into build/<name>/bootstrap, plus build/<name>.zip when zip is installed
# Each through its build-<LogicalId> target, the recipe sam build runs.
build:
	@for fn in $(FUNCTIONS); do \
	  f=$${fn%%:*}; id=$${fn##*:}; \
	  $(MAKE) --no-print-directory build-$$id ARTIFACTS_DIR=$(CURDIR)/build/$$f || exit 1; \
	  if command -v zip >/dev/null 2>&1; then \
	    rm -f build/$$f.zip && zip -q -X -j build/$$f.zip build/$$f/bootstrap || exit 1; \
	  fi; \
	done

# sam build (Metadata BuildMethod: makefile) runs build-<LogicalId> with
# ARTIFACTS_DIR set; the function's code is $(ARTIFACTS_DIR)/bootstrap.
# $(call lambda,NAME) builds ./functions/NAME there.
define lambda
$(if $(ARTIFACTS_DIR),,$(error ARTIFACTS_DIR is not set: this target is run by sam build))
$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/$(1)
endef

.PHONY: build-ReconcileFunction build-DriftFunction build-FlowlogsFunction sam-validate
build-ReconcileFunction:
	$(call lambda,reconcile)

build-DriftFunction:
	$(call lambda,drift)

build-FlowlogsFunction:
	$(call lambda,flowlogs)

## sam-validate: validates template.yaml with the SAM CLI, if installed (cfn-lint in make lint covers it offline)
sam-validate:
	sam validate --lint --template template.yaml

## fuzz: fuzzes the rule file parser for FUZZTIME (found inputs go to pkg/rules/testdata/fuzz)
FUZZTIME ?= 15s
.PHONY: fuzz
fuzz:
	$(GO) test ./pkg/rules -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)

## chaos: the convergence suite with CHAOS_SCENARIOS randomised fault scenarios (seeds from CHAOS_SEED); summary in build/chaos.txt
CHAOS_SCENARIOS ?= 500
CHAOS_SEED ?= 20261101
.PHONY: chaos
chaos:
	@mkdir -p build
	CHAOS_SCENARIOS=$(CHAOS_SCENARIOS) CHAOS_SEED=$(CHAOS_SEED) CHAOS_SUMMARY=$(CURDIR)/build/chaos.txt \
	  $(GO) test -count=1 -timeout 120m -v -run 'TestChaos|TestLedgerLoss|TestCommitCut' ./internal/dev/chaos

## bench: API calls (EC2 reads beside their limit, DynamoDB items read), wall time and memory of sgrules vs a naive per-rule baseline against moto (docs/benchmarks.md); BENCH_N, BENCH_SWEEP (0: skip), BENCH_ORG (0: skip), BENCH_ORG_TARGETS, BENCH_LOAD_FILES and BENCH_LOAD_FUNCTIONS (the load scenario; 0 files: skip), BENCH_OUT
BENCH_N ?= 1000,5000,10000
BENCH_SWEEP ?= 10000
# BENCH_ORG: member accounts of the organisation sweep (x 3 regions, 100 rules each; 0: skip).
BENCH_ORG ?= 10
# BENCH_ORG_TARGETS: the organisation sweep again at these numbers of targets (DynamoDB items read per target; empty: skip).
BENCH_ORG_TARGETS ?= 2,10,30
# BENCH_LOAD_FILES, BENCH_LOAD_FUNCTIONS: the load scenario, a sync of that many changed files as S3
# notifications in SQS batches to that many reconcile functions at once under the emulator (0 files: skip).
BENCH_LOAD_FILES ?= 300
BENCH_LOAD_FUNCTIONS ?= 4
BENCH_OUT ?= bench/results/latest.json
# BENCH_FLAGS: more sgbench flags, e.g. -moto-patch=false for stock moto.
BENCH_FLAGS ?=
bench: $(BIN)/aws-lambda-rie
	$(GO) build -o $(BIN)/sgbench ./bench/cmd/sgbench
	$(BIN)/sgbench -n $(BENCH_N) -sweep $(BENCH_SWEEP) -org $(BENCH_ORG) -org-targets "$(BENCH_ORG_TARGETS)" \
	  -load-files $(BENCH_LOAD_FILES) -load-functions $(BENCH_LOAD_FUNCTIONS) -out $(BENCH_OUT) $(BENCH_FLAGS)
	$(MAKE) --no-print-directory bench-flowlogs

## bench-flowlogs: flow-log reading on one core (GOMAXPROCS=1): records per CPU-second, gzip included, and the
## peak heap of a BENCH_FLOWLOG_GIB GiB day (0: skipped) and of the ingestion function's path per object
BENCH_FLOWLOG_GIB ?= 1
.PHONY: bench-flowlogs
bench-flowlogs:
	FLOWLOG_BENCH_GIB=$(BENCH_FLOWLOG_GIB) GOMAXPROCS=1 $(GO) test -run '^$$' -bench 'BenchmarkAggregateGzip|BenchmarkDayGiB|BenchmarkObject' \
	  -benchtime 1x ./pkg/flowlog ./internal/lambda/flowlogs

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin build .aws-sam
