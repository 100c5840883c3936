# syntax=docker/dockerfile:1
# One Dockerfile for every platform: the build stage runs on the builder's own
# platform and cross-compiles for the target, so no emulation is needed.
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) \
#     -t <registry>/rancher-ecr-credentials:<tag> --push .
#
# Without the build args the binary says it is not a release build (--version).

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
ARG VERSION= REVISION= CREATED=
# Static (no cgo, pure-Go DNS resolver), reproducible paths, version stamped.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -tags netgo \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${REVISION} -X main.date=${CREATED}" \
      -o /out/rancher-ecr-credentials .

# distroless static: CA certificates, /etc/passwd with nonroot, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION= REVISION= CREATED=
LABEL org.opencontainers.image.title="rancher-ecr-credentials" \
      org.opencontainers.image.description="Keeps Rancher 1.x/2.x registry credentials for private Amazon ECR registries fresh" \
      org.opencontainers.image.source="https://github.com/rancher-ecr-credentials/rancher-ecr-credentials" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=build /out/rancher-ecr-credentials /rancher-ecr-credentials
USER 65532:65532
EXPOSE 8080
# No shell or curl in the image: the binary checks its own /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/rancher-ecr-credentials", "healthcheck"]
ENTRYPOINT ["/rancher-ecr-credentials"]
