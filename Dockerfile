# syntax=docker/dockerfile:1
# roomd in a container: a static binary on distroless, run as a non-root user.
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t roomd .
# The README's "Deployment" section has the run command and how to reach the admin API.

# build compiles a static roomd (no cgo, so it needs no libc).
FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The build context has no .git (.dockerignore), so without this argument the
# binary says "(devel)".
# VERSION is what roomd -version and the admin API's ListNodes report.
ARG VERSION=
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X roomd/rooms/admin.version=${VERSION}" -o /out/roomd ./cmd/roomd
# roomctl beside it, for "docker exec <container> roomctl rooms list".
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/roomctl ./cmd/roomctl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/roomd /out/roomctl /usr/local/bin/
USER nonroot:nonroot
# 8080: WebSocket clients and the demo page. 9090 (admin gRPC) and 9091
# (admin REST) listen on 127.0.0.1 unless ROOMD_ADMIN_GRPC / ROOMD_ADMIN_HTTP
# move them, which roomd refuses without an admin token.
EXPOSE 8080 9090 9091
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/roomd"]
CMD ["-listen", ":8080"]
