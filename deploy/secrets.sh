#!/bin/sh
# deploy/secrets.sh [DIR] — creates the cluster's auth secret and cluster key for
# deploy/compose.yaml in DIR (default deploy/secrets), unless they exist.
# The directory is 0700 (its owner only); the files 0644 so the container's
# uid 65532 can read them through the bind mount.
set -eu
dir=${1:-$(dirname "$0")/secrets}
mkdir -p "$dir"
chmod 0700 "$dir"
if [ ! -s "$dir/auth-secret" ]; then
  head -c 32 /dev/urandom | base64 > "$dir/auth-secret"
fi
if [ ! -s "$dir/cluster.key" ]; then
  # the same format as `playhead keygen`: 32 random bytes, base64
  head -c 32 /dev/urandom | base64 > "$dir/cluster.key"
fi
chmod 0644 "$dir/auth-secret" "$dir/cluster.key"
echo "secrets in $dir: auth-secret (device tokens), cluster.key (gossip and replication)"
