# syntax=docker/dockerfile:1
# keygate: a static binary on distroless, running as nonroot (uid 65532).
#   docker build -t keygate --build-arg VERSION=$(git describe --tags --always) .
#   docker run -p 8080:8080 -v $PWD/keygate.yaml:/etc/keygate/keygate.yaml:ro keygate

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /keygate ./cmd/keygate
# An empty /data owned by nonroot: a volume mounted there starts writable for the SQLite store.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /keygate /keygate
COPY --from=build --chown=65532:65532 /out/data /data
USER nonroot:nonroot
# 8080: public listener; 9090: admin listener (/healthz, /readyz, /metrics, /v1/). The admin
# listener defaults to 127.0.0.1:9090: set admin.listen to "0.0.0.0:9090" to publish it.
EXPOSE 8080 9090
ENTRYPOINT ["/keygate"]
CMD ["serve", "--config", "/etc/keygate/keygate.yaml"]
