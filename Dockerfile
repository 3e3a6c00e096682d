# omics-worker: a small static image (CGO disabled, distroless static,
# non-root). Build: docker build -t omics-worker .
# syntax=docker/dockerfile:1

FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN go build -ldflags "-s -w -X main.version=${VERSION}" -o /out/omics-worker ./cmd/omics-worker \
 && /out/omics-worker version

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/omics-worker /omics-worker
# Temporary files of the file tasks (the converted document while it is
# uploaded, the record spool): mount a volume here for very large files.
ENV OMICS_WORKER_TMPDIR=/tmp
USER nonroot:nonroot
ENTRYPOINT ["/omics-worker"]
CMD ["worker", "--loglevel=info"]
