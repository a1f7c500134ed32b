# Sourced by base-image.sh and postgres-image.sh: make an image from a minimal Debian 12
# root built with debootstrap from Debian's mirror (no registry needed).
#   debootstrap_image IMAGE PACKAGES PREPARE_FUNCTION DOCKER_IMPORT_CHANGES...
# PREPARE_FUNCTION (may be :) gets the root folder before it is imported.
debootstrap_image() {
  local image=$1 packages=$2 prepare=$3
  shift 3
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "image $image is present"
    return 0
  fi
  if ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  local root log
  root=$(mktemp -d)
  log=$(mktemp)
  echo "building $image with debootstrap (a minute or two)"
  if ! debootstrap --variant=minbase --include="$packages" bookworm "$root" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -rf "$root" "$log"
    echo "debootstrap failed" >&2
    return 1
  fi
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  "$prepare" "$root"
  local changes=(-c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
  local change
  for change in "$@"; do changes+=(-c "$change"); done
  tar -C "$root" -c . | docker import "${changes[@]}" - "$image" >/dev/null
  rm -rf "$root" "$log"
  echo "image $image built"
}
