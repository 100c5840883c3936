# syntax=docker/dockerfile:1
# Build: docker build --build-arg VERSION=$(git describe --tags --always) -t rancher-ecr-credentials .

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
# Static (no cgo, pure-Go DNS resolver), reproducible paths, version stamped.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -tags netgo \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/rancher-ecr-credentials .

# distroless static: CA certificates, /etc/passwd with nonroot, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rancher-ecr-credentials /rancher-ecr-credentials
USER 65532:65532
EXPOSE 8080
# No shell or curl in the image: the binary checks its own /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/rancher-ecr-credentials", "healthcheck"]
ENTRYPOINT ["/rancher-ecr-credentials"]
