# sgrules build. Every set-up step the README's commands need lives here.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
STATICCHECK_VERSION := v0.8.2
LAMBDA_FLAGS := -trimpath -tags lambda.norpc -ldflags="-s -w"
LAMBDA_ENV := GOOS=linux GOARCH=arm64 CGO_ENABLED=0
FUNCTIONS := reconcile drift

export SGRULES_RIE := $(BIN)/aws-lambda-rie

.PHONY: all test lint tools build fmt clean

all: lint test

## tools: installs the Lambda Runtime Interface Emulator and staticcheck into ./bin
tools: $(BIN)/aws-lambda-rie

$(BIN)/aws-lambda-rie:
	GOBIN=$(BIN) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## test: every test (starts moto_server and the RIE itself)
test: tools
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

## lint: gofmt, go vet, staticcheck
lint: $(BIN)/staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...

## fuzz: fuzzes the rule file parser for FUZZTIME (found inputs go to pkg/rules/testdata/fuzz)
FUZZTIME ?= 15s
.PHONY: fuzz
fuzz:
	$(GO) test ./pkg/rules -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin build .aws-sam
