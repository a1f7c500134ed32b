#!/usr/bin/env bash
# Make a PostgreSQL image without a registry (for deploy/compose.yaml on air-gapped
# hosts): Debian 12's postgresql made into a root with debootstrap, plus
# deploy/postgres-entrypoint.sh. About a minute, once.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/debootstrap-image.sh

prepare() {
  # The package made a cluster in /var/lib/postgresql/15/main; the entrypoint makes its own.
  rm -rf "$1"/var/lib/postgresql/15 "$1"/etc/postgresql/15
  install -m 0755 deploy/postgres-entrypoint.sh "$1/usr/local/bin/postgres-entrypoint"
}

# The entrypoint's hash as a label, so that .ci/run rebuilds an image made from an older one.
entrypoint_hash=$(sha256sum deploy/postgres-entrypoint.sh | cut -c1-16)
debootstrap_image "${1:-local/postgres:15}" postgresql-15,postgresql-client-15 prepare \
  'ENV PGDATA=/var/lib/postgresql/data' 'EXPOSE 5432' \
  "LABEL orchestrator.entrypoint=$entrypoint_hash" \
  'ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]'
