#!/usr/bin/env bash
# Make a Python base image without a registry: a minimal Debian 12 root made with
# debootstrap from Debian's mirror, imported into the engine. About a minute, once.
set -euo pipefail
IMAGE=${1:-local/python:3.11-bookworm}
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
echo "building $IMAGE with debootstrap (about a minute)"
if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "debootstrap failed" >&2
  exit 1
fi
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'CMD ["python3"]' - "$IMAGE" >/dev/null
echo "image $IMAGE built"
