#!/usr/bin/env bash
# Make a Python base image without a registry: a minimal Debian 12 root with python3 and
# its venv module, made with debootstrap. About a minute, once.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/debootstrap-image.sh
debootstrap_image "${1:-local/python:3.11-bookworm}" python3,python3-venv,ca-certificates : \
  'CMD ["python3"]'
