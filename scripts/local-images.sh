#!/usr/bin/env bash
# Make sure the image the example jobs and the tests use, local/busybox:latest, exists
# on the engine. No registry needed: it is built from Debian's busybox-static when the
# busybox image cannot be pulled (air-gapped hosts). Quick when the image is there.
set -euo pipefail

IMAGE=${ORCHESTRATOR_JOB_IMAGE:-local/busybox:latest}

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "image $IMAGE is present"
  exit 0
fi

if timeout 60 docker pull -q busybox:stable >/dev/null 2>&1; then
  docker tag busybox:stable "$IMAGE"
  echo "image $IMAGE tagged from busybox:stable (pulled)"
  exit 0
fi

echo "no registry answered: building $IMAGE from busybox-static"
is_static() { [ -x "$1" ] && ! ldd "$1" >/dev/null 2>&1; }  # ldd fails on static binaries
BUSYBOX=/bin/busybox
if ! is_static "$BUSYBOX"; then
  apt-get update -qq
  apt-get install -y -qq busybox-static >/dev/null
  is_static "$BUSYBOX" || { echo "no static busybox at $BUSYBOX" >&2; exit 1; }
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/tmp"
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["sh"]' - "$IMAGE" >/dev/null
echo "image $IMAGE built"
