#!/usr/bin/env bash
# Checks an OCI archive written by build-image.sh: skopeo reads its manifest and config (entrypoint,
# non-root user), and the image's own JRE runs `tidemark --version` from its unpacked root file
# system (umoci + chroot: no container runtime or daemon needed). Exit 0 when all holds.
#   deploy/container/check-image.sh [OUT.tar]   (default dist/target/tidemark-image.tar)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
img=$(readlink -f "${1:-$root/dist/target/tidemark-image.tar}")
fail() { echo "check-image: $*" >&2; exit 1; }
for tool in skopeo umoci; do command -v $tool >/dev/null || fail "$tool is missing: run deploy/install-deps.sh"; done
inspect=$(skopeo inspect "oci-archive:$img")
config=$(skopeo inspect --config "oci-archive:$img")
grep -q '"Architecture": "amd64"' <<<"$inspect" || fail "not an amd64 image: $inspect"
grep -q '"io.tidemark.cli.Main"' <<<"$config" || fail "the entrypoint does not run io.tidemark.cli.Main: $config"
grep -q '"User": "10001:10001"' <<<"$config" || fail "the image does not run as uid 10001: $config"
work=$(mktemp -d /tmp/tidemark-image-check.XXXXXX)
trap 'umount "$work/bundle/rootfs/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/oci" && tar -C "$work/oci" -xf "$img"
tag=$(sed -n 's/.*"org.opencontainers.image.ref.name":"\([^"]*\)".*/\1/p' "$work/oci/index.json")
umoci unpack --image "$work/oci:${tag:-latest}" "$work/bundle" >/dev/null
mkdir -p "$work/bundle/rootfs/proc"
mount -t proc proc "$work/bundle/rootfs/proc"
version=$(chroot --userspec=10001:10001 "$work/bundle/rootfs" /opt/jre/bin/java -cp '/opt/tidemark/lib/*' io.tidemark.cli.Main --version)
[[ "$version" == tidemark* ]] || fail "the image's JRE did not run tidemark --version: $version"
echo "check-image: $img OK: $(grep -o '"Digest": "[^"]*"' <<<"$inspect" | head -1), $version, $(grep -c '"sha256:' <<<"$inspect") layer(s)" >&2
