#!/usr/bin/env bash
# Builds the tiny test guest of recipes/qemu.md §7 into CACHE_DIR: a Debian kernel (vmlinuz) and a
# busybox initramfs (initrd.gz) that loads the virtio + ext4 modules, mounts /dev/vda on /mnt when it
# holds a file system, starts qemu-guest-agent on the virtio-serial port org.qemu.guest_agent.0 and
# prints "init: ready" on the serial console. It also holds /bin/tm-wlat, the in-guest write-latency
# probe (guest-write-latency.c next to this script), compiled here with the host's gcc, static.
#
# Nothing is installed on the host: the packages are fetched with `apt-get download` into
# CACHE_DIR/debs and unpacked there. The kernel is the one linux-image-amd64 depends on now.
# Idempotent: when CACHE_DIR/vmlinuz and CACHE_DIR/initrd.gz exist and were built by this version
# of the script and of guest-write-latency.c, it only prints their paths.
#
# Usage: deploy/guest/build-tiny-guest.sh CACHE_DIR   (needs dpkg-deb, cpio, gzip, ldd, gcc + libc6-dev)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 CACHE_DIR" >&2; exit 1; }
cache=$(mkdir -p "$1" && cd "$1" && pwd)
stamp="$cache/build.stamp"
wlat="$(cd "$(dirname "$0")" && pwd)/guest-write-latency.c"
[ -f "$wlat" ] || { echo "tidemark: $wlat is missing; run this script from the Tidemark source tree" >&2; exit 1; }
# the stamp covers everything that goes into the guest from this tree: this script and the probe
want=$(cat "$0" "$wlat" | sha256sum | cut -c1-16)
if [ -f "$cache/vmlinuz" ] && [ -f "$cache/initrd.gz" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$cache/vmlinuz $cache/initrd.gz"; exit 0
fi
for tool in dpkg-deb cpio gzip ldd apt-get gcc; do
  command -v $tool >/dev/null || { echo "tidemark: $tool is missing; run deploy/install-deps.sh" >&2; exit 1; }
done

kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$kpkg" ]; then
  [ "$(id -u)" = 0 ] && apt-get update -q >/dev/null
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
fi
[ -n "$kpkg" ] || { echo "tidemark: apt knows no linux-image-amd64; run apt-get update" >&2; exit 1; }
K=${kpkg#linux-image-}

mkdir -p "$cache/debs"
fetch() { # package...
  local missing=()
  for p in "$@"; do ls "$cache/debs/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  (cd "$cache/debs" && apt-get download -q "${missing[@]}" >/dev/null)
}
fetch "$kpkg" qemu-guest-agent busybox-static

work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
for d in "$cache/debs/${kpkg}_"*.deb "$cache/debs/qemu-guest-agent_"*.deb "$cache/debs/busybox-static_"*.deb; do
  dpkg-deb -x "$d" "$work/root"
done
r="$work/initrd"
mkdir -p "$r"/{bin,dev,proc,sys,tmp,mnt,run,lib64,lib/x86_64-linux-gnu,usr/sbin,lib/modules/$K}
cp "$work/root/bin/busybox" "$r/bin/"
cp "$work/root/usr/sbin/qemu-ga" "$r/usr/sbin/"
# the write-latency probe: static, so it needs no library in the guest
gcc -static -O2 -Wall -o "$r/bin/tm-wlat" "$wlat" \
  || { echo "tidemark: cannot compile $wlat statically; install gcc and libc6-dev (deploy/install-deps.sh)" >&2; exit 1; }
# qemu-ga's shared libraries: the host runs the same Debian release (QEMU itself needs glib)
for l in $(ldd "$work/root/usr/sbin/qemu-ga" | grep -o '/lib[^ ]*'); do
  mkdir -p "$r$(dirname "$l")"; cp -L "$l" "$r$l"
done
# load order matters: virtio_ring before virtio (modinfo -F depends)
mods="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_console virtio_blk crc16 mbcache jbd2 crc32c_generic libcrc32c ext4"
for m in $mods; do
  f=$(find "$work/root/lib/modules/$K" -name "$m.ko" -o -name "$m.ko.xz" | head -1)
  if [ -z "$f" ]; then
    # built into this kernel (modules.builtin) or absent: the guest's insmod skips what is missing
    grep -q "/$m.ko\$" "$work/root/lib/modules/$K/modules.builtin" 2>/dev/null \
      || echo "tidemark: note: module $m not found in $kpkg" >&2
    continue
  fi
  case "$f" in *.xz) xz -dc "$f" >"$r/lib/modules/$K/$m.ko" ;; *) cp "$f" "$r/lib/modules/$K/" ;; esac
done
cat >"$r/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $mods; do [ -f /lib/modules/$K/\$m.ko ] && insmod /lib/modules/$K/\$m.ko; done
n=0; while [ ! -b /dev/vda ] && [ \$n -lt 50 ]; do sleep 0.1; n=\$((n+1)); done
mount -t ext4 /dev/vda /mnt || echo "init: /dev/vda not mounted"
PORT=""; n=0
while [ -z "\$PORT" ] && [ \$n -lt 50 ]; do
  for p in /sys/class/virtio-ports/*; do
    [ "\$(cat \$p/name 2>/dev/null)" = org.qemu.guest_agent.0 ] && PORT=/dev/\$(basename \$p)
  done
  [ -z "\$PORT" ] && sleep 0.1; n=\$((n+1))
done
[ -n "\$PORT" ] && /usr/sbin/qemu-ga -m virtio-serial -p \$PORT -t /run -f /run/qga.pid -d
echo "init: ready"
while true; do sleep 3600; done
INIT
chmod +x "$r/init"
(cd "$r" && find . | cpio -o -H newc --quiet | gzip -1 >"$work/initrd.gz")
cp "$work/root/boot/vmlinuz-$K" "$work/vmlinuz"
mv "$work/initrd.gz" "$cache/initrd.gz"; mv "$work/vmlinuz" "$cache/vmlinuz"
echo "$want" >"$stamp"
echo "$cache/vmlinuz $cache/initrd.gz"
