# syntax=docker/dockerfile:1
# The one definition of the image, for two builders:
#
# - docker buildx (BuildKit), anywhere with a registry: the build stage runs on the builder's own
#   platform and cross-compiles for each target, so no emulation is needed.
#
#     docker buildx build --platform linux/amd64,linux/arm64 \
#       --build-arg VERSION=$(git describe --tags --always --dirty) \
#       --build-arg REVISION=$(git rev-parse HEAD) \
#       --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) \
#       -t <registry>/rancher-ecr-credentials:<tag> --push .
#
# - scripts/image.sh (podman), offline: it compiles the binaries on the host with the same go build
#   command and hands them in as the build context named "binaries"
#   (podman build --build-context binaries=<dir>, where <dir>/linux-amd64/rancher-ecr-credentials …).
#   A named build context replaces the stage of the same name, so the build and binaries stages are
#   skipped and nothing is pulled: the final stage is FROM scratch. BuildKit does the same with
#   `docker buildx build --build-context binaries=<dir>`.
#   https://docs.docker.com/reference/cli/docker/buildx/build/#build-context
#
# Without the build args the binary says it is not a release build (--version).

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
ARG VERSION= REVISION= CREATED=
# Static (no cgo, pure-Go DNS resolver), reproducible paths, version stamped. scripts/image.sh runs
# the same command (TestImageScript_BuildCommand keeps the two alike).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -tags netgo \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${REVISION} -X main.date=${CREATED}" \
      -o /out/rancher-ecr-credentials .

# The binaries, one folder per platform: the layout scripts/image.sh gives its "binaries" context.
FROM scratch AS binaries
ARG TARGETOS TARGETARCH
COPY --from=build /out/rancher-ecr-credentials /${TARGETOS}-${TARGETARCH}/rancher-ecr-credentials

# Nothing but the binary: no shell, no package manager, no /etc. CA roots are built into the binary
# (golang.org/x/crypto/x509roots/fallback, used when the system offers none), so none are copied.
FROM scratch
ARG TARGETOS TARGETARCH
ARG VERSION= REVISION= CREATED=
LABEL org.opencontainers.image.title="rancher-ecr-credentials" \
      org.opencontainers.image.description="Keeps registry credentials for private Amazon ECR registries fresh in Rancher 1.x/2.x and Kubernetes" \
      org.opencontainers.image.source="https://github.com/rancher-ecr-credentials/rancher-ecr-credentials" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=binaries /${TARGETOS}-${TARGETARCH}/rancher-ecr-credentials /rancher-ecr-credentials
# Numeric, so no /etc/passwd is needed; the AWS SDK reads $HOME/.aws (mount files there, or set
# AWS_SHARED_CREDENTIALS_FILE). 65532 is distroless's "nonroot", as in the image's earlier releases.
USER 65532:65532
ENV HOME=/home/nonroot
EXPOSE 8080
# No shell or curl in the image: the binary checks its own /healthz. (Kept in Docker-format images;
# scripts/image.sh builds that format so `docker run` sees it.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/rancher-ecr-credentials", "healthcheck"]
ENTRYPOINT ["/rancher-ecr-credentials"]
