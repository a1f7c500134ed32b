#!/usr/bin/env bash
# Make a PostgreSQL image without a registry (for deploy/compose.yaml on air-gapped
# hosts): Debian 12's postgresql made into a root with debootstrap, plus
# deploy/postgres-entrypoint.sh. About a minute and a half, once.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${1:-local/postgres:15}
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "image $IMAGE is present"
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
root=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$root" "$log"' EXIT
echo "building $IMAGE with debootstrap (about a minute and a half)"
if ! debootstrap --variant=minbase --include=postgresql-15,postgresql-client-15 \
    bookworm "$root" >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "debootstrap failed" >&2
  exit 1
fi
# The package made a cluster in /var/lib/postgresql/15/main; the entrypoint makes its own.
rm -rf "$root"/var/lib/postgresql/15 "$root"/etc/postgresql/15
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
install -m 0755 deploy/postgres-entrypoint.sh "$root/usr/local/bin/postgres-entrypoint"
tar -C "$root" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV PGDATA=/var/lib/postgresql/data' \
  -c 'EXPOSE 5432' \
  -c 'ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]' - "$IMAGE" >/dev/null
echo "image $IMAGE built"
