# make run   builds everything and starts a local cluster with a ready user
# make test  runs every test
GO      ?= go
BIN     := $(CURDIR)/bin
RUNDIR  := $(CURDIR)/run
export PATH := $(PATH):/usr/local/go/bin:$(shell go env GOPATH 2>/dev/null)/bin

.PHONY: all deps build run stop test proto clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(GO) build -o $(BIN)/ ./hsmd/cmd/hsmd ./client/cmd/hsm
	$(GO) build -buildmode=c-shared -o $(BIN)/libopenhsm-pkcs11.so ./p11module
	$(GO) build -o $(BIN)/ ./p11module/cmd/openhsm-p11-helper

run: build
	@scripts/cluster.sh down $(RUNDIR)
	@rm -rf $(RUNDIR)
	@scripts/cluster.sh up -n 3 $(RUNDIR) | tee $(RUNDIR).env
	@echo "# saved in $(RUNDIR).env; stop with: scripts/cluster.sh down $(RUNDIR)"

stop:
	@scripts/cluster.sh down $(RUNDIR)

test: build
	@scripts/test.sh

proto:
	command -v protoc-gen-go >/dev/null || $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	command -v protoc-gen-go-grpc >/dev/null || $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.1
	protoc -I . --go_out=. --go_opt=module=github.com/openhsm/openhsm \
	  --go-grpc_out=. --go-grpc_opt=module=github.com/openhsm/openhsm \
	  api/hsmpb/hsm.proto cluster/peerpb/peer.proto

clean:
	rm -rf $(BIN) $(RUNDIR) $(RUNDIR).env
