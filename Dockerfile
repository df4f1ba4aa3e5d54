# stile's container image: a static binary on distroless, as a non-root user.
#
#   docker build -t stile \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg COMMIT="$(git rev-parse --short=12 HEAD)" \
#     --build-arg DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#   docker run -p 127.0.0.1:8080:8080 -v stile-data:/var/lib/stile stile
#
# docs/containers.md has the rest (PostgreSQL, compose, the master key).

# The builder's Go is go.mod's (a test checks they agree).
FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so a change to the code does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# What `stile version` says; .git is not copied into the build, so they come
# from the caller as in `make build`.
ARG VERSION=dev
ARG COMMIT=
ARG DATE=
# The same build as `make build`: pure Go (the SQLite driver too), static,
# -trimpath, stamped.
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
      -o /out/stile ./cmd/stile \
 && mkdir -p /out/data

# No shell, no package manager: CA certificates, /etc/passwd with the
# nonroot user (65532), and stile.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/stile /usr/local/bin/stile
# The SQLite database and, on first start, its master key (stile.db.key)
# live here; the directory belongs to the user stile runs as.
COPY --from=build --chown=65532:65532 /out/data /var/lib/stile
ENV STILE_DATABASE=sqlite:/var/lib/stile/stile.db \
    STILE_LISTEN=:8080
VOLUME ["/var/lib/stile"]
USER 65532:65532
EXPOSE 8080
# No shell in the image: stile checks itself (GET /readyz on 127.0.0.1 at
# the port of STILE_LISTEN; exit 1 with the reason otherwise).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/stile", "health"]
ENTRYPOINT ["/usr/local/bin/stile"]
CMD ["serve"]
