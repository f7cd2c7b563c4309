# The node image: one static binary FROM scratch. The binary is built on the
# host (make images) and copied in, so building needs no base image and no
# registry: `make images` runs
#   CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(git describe)" -o bin/image/node ./cmd/node
# and copies the host's CA bundle next to it.
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="pushcluster node" \
      org.opencontainers.image.description="SSE and WebSocket push relayed through Redis Streams" \
      org.opencontainers.image.version="${VERSION}"
COPY images/node/passwd images/node/group /etc/
COPY bin/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY bin/image/node /node
# 65532 is "nonroot" in /etc/passwd: numeric, so runAsNonRoot can verify it.
USER 65532:65532
ENV PUSH_LISTEN=:6788
EXPOSE 6788/tcp 7946/tcp 7946/udp
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/node", "healthcheck"]
ENTRYPOINT ["/node"]
