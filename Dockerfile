# playhead's container image: the static binary and nothing else.
#
# Build it (from the repository root; no base image is pulled):
#
#   CGO_ENABLED=0 go build -trimpath -o playhead ./cmd/playhead && docker build -t playhead .
#
# CGO_ENABLED=0 makes the binary static (no libc in a scratch image); Pebble's
# zstd then comes from klauspost/compress instead of the C library, the same
# format (storage.TestZstdCompressedTablesReadBack runs in CI without cgo).
# Run a 3-node cluster with deploy/compose.yaml (docs/OPERATIONS.md).
FROM scratch

# The binary, and /data owned by the user the node runs as (a named volume
# mounted on /data starts with this ownership).
COPY playhead /playhead
COPY --chown=65532:65532 deploy/rootfs/ /

# An unprivileged numeric user (no /etc/passwd in scratch): "nonroot".
USER 65532:65532

# Defaults for a container; every flag also reads PLAYHEAD_<FLAG> (playhead serve --help).
ENV PLAYHEAD_DATA_DIR=/data \
    PLAYHEAD_HTTP_ADDR=0.0.0.0:8080 \
    PLAYHEAD_LOG_FORMAT=json

VOLUME ["/data"]

# 8080 device API (+ /healthz, /readyz, /metrics); 7946 gossip (TCP and UDP);
# 7947 ring raft; 7948 replication.
EXPOSE 8080/tcp 7946/tcp 7946/udp 7947/tcp 7948/tcp

# docker stop sends SIGTERM: the node leaves the cluster and closes storage.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=4s --start-period=60s --retries=3 CMD ["/playhead", "health"]
ENTRYPOINT ["/playhead"]
CMD ["serve"]
