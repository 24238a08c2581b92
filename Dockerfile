# syntax=docker/dockerfile:1
# Build: a static binary, no cgo.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/gwook ./cmd/gwook \
 && mkdir -p /out/data

# Run: distroless static (CA certificates and tzdata, no shell), as a non-root user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gwook /gwook
# The SQLite database when DATABASE_URL is unset (one replica only): mount a
# volume here to keep it across containers.
COPY --from=build --chown=nonroot:nonroot /out/data /var/lib/gwook
VOLUME /var/lib/gwook
USER nonroot:nonroot
EXPOSE 4000
ENV HTTP_SERVER_PORT=4000 DATA_DIR=/var/lib/gwook
ENTRYPOINT ["/gwook"]
