# make images: every image docker-compose.yml needs, built locally with
# nothing pulled. The node's binary is built here and copied into a FROM
# scratch image (see Dockerfile); Redis and HAProxy are the public images
# when present, else stand-ins built from Debian's binaries
# (scripts/standin-images).

VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
NODE_IMAGE ?= pushcluster/node:dev
GOARCH     ?= $(shell go env GOARCH)
CA_BUNDLE  ?= /etc/ssl/certs/ca-certificates.crt

.PHONY: images node-image standin-images node-binary clean

images: node-image standin-images

node-binary:
	mkdir -p bin/image
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) go build -trimpath \
		-ldflags "-s -w -X main.version=$(VERSION)" -o bin/image/node ./cmd/node
	cp $(CA_BUNDLE) bin/image/ca-certificates.crt

node-image: node-binary
	DOCKER_BUILDKIT=0 docker build -q --build-arg VERSION=$(VERSION) -t $(NODE_IMAGE) . >/dev/null
	@docker image inspect -f '$(NODE_IMAGE) $(VERSION): {{.Size}} bytes' $(NODE_IMAGE)

standin-images:
	scripts/standin-images

clean:
	rm -rf bin/image
