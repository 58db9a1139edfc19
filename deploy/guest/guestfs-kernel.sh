#!/usr/bin/env bash
# Prepares a kernel for libguestfs's appliance (tidemark files / mount) without installing
# linux-image-amd64 (whose initramfs build is slow): the Debian kernel package that
# deploy/guest/build-tiny-guest.sh downloads into CACHE_DIR/debs is unpacked into
# CACHE_DIR/guestfs-kernel and its module index is built (depmod). supermin then takes it from
# SUPERMIN_KERNEL, SUPERMIN_MODULES and SUPERMIN_KERNEL_VERSION, which this script prints as
# shell assignments; `tidemark files` finds CACHE_DIR/guestfs-kernel by itself when CACHE_DIR is
# ~/.cache/tidemark/guest (the default) or TIDEMARK_GUESTFS_KERNEL names it.
#
# supermin also needs the host's /lib/modules directory to exist (it copies its attributes);
# the script creates it, empty, when it is missing.
#
# Idempotent. Usage: deploy/guest/guestfs-kernel.sh [CACHE_DIR]   (default ~/.cache/tidemark/guest)
set -euo pipefail
cache=${1:-$HOME/.cache/tidemark/guest}
here=$(cd "$(dirname "$0")" && pwd)
out="$cache/guestfs-kernel"
if [ ! -f "$out/ready" ]; then
  for tool in dpkg-deb depmod; do
    command -v $tool >/dev/null || { echo "tidemark: $tool is missing; run deploy/install-deps.sh" >&2; exit 1; }
  done
  ls "$cache"/debs/linux-image-[0-9]*.deb >/dev/null 2>&1 || "$here/build-tiny-guest.sh" "$cache" >/dev/null
  deb=$(ls "$cache"/debs/linux-image-[0-9]*.deb | sort -V | tail -1)
  tmp=$(mktemp -d "$cache/guestfs-kernel.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  dpkg-deb -x "$deb" "$tmp"
  K=$(ls "$tmp/lib/modules" | head -1)
  depmod -b "$tmp" "$K"
  echo "$K" >"$tmp/ready"
  rm -rf "$out"; mv "$tmp" "$out"; trap - EXIT
fi
K=$(cat "$out/ready")
if [ ! -d /lib/modules ]; then
  if [ "$(id -u)" = 0 ]; then mkdir -p /lib/modules; else
    echo "tidemark: supermin needs the directory /lib/modules; run: sudo mkdir -p /lib/modules" >&2; exit 1
  fi
fi
echo "SUPERMIN_KERNEL=$out/boot/vmlinuz-$K"
echo "SUPERMIN_MODULES=$out/lib/modules/$K"
echo "SUPERMIN_KERNEL_VERSION=$K"
