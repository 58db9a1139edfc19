#!/usr/bin/env bash
# Checks an OCI archive written by build-image.sh: skopeo reads its manifest and config (entrypoint,
# non-root user), and the image's own JRE runs `tidemark --version` from its unpacked root file
# system (umoci + chroot: no container runtime or daemon needed); with --run it also starts the engine
# from the image (embedded broker, no VMs, metrics on a loopback port) and awaits /readyz (~1 min).
# Exit 0 when all holds.
#   deploy/container/check-image.sh [--run] [OUT.tar]   (default dist/target/tidemark-image.tar)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
run=false; if [ "${1:-}" = --run ]; then run=true; shift; fi
img=$(readlink -f "${1:-$root/dist/target/tidemark-image.tar}")
fail() { echo "check-image: $*" >&2; exit 1; }
for tool in skopeo umoci; do command -v $tool >/dev/null || fail "$tool is missing: run deploy/install-deps.sh"; done
inspect=$(skopeo inspect "oci-archive:$img")
config=$(skopeo inspect --config "oci-archive:$img")
grep -q '"Architecture": "amd64"' <<<"$inspect" || fail "not an amd64 image: $inspect"
grep -q '"io.tidemark.cli.Main"' <<<"$config" || fail "the entrypoint does not run io.tidemark.cli.Main: $config"
grep -q '"User": "10001:10001"' <<<"$config" || fail "the image does not run as uid 10001: $config"
work=$(mktemp -d /tmp/tidemark-image-check.XXXXXX)
engine=""
cleanup() {
  if [ -n "$engine" ]; then kill "$engine" 2>/dev/null || true; wait "$engine" 2>/dev/null || true; fi
  umount "$work/bundle/rootfs/dev" 2>/dev/null || true
  umount "$work/bundle/rootfs/proc" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/oci" && tar -C "$work/oci" -xf "$img"
tag=$(sed -n 's/.*"org.opencontainers.image.ref.name":"\([^"]*\)".*/\1/p' "$work/oci/index.json")
umoci unpack --image "$work/oci:${tag:-latest}" "$work/bundle" >/dev/null
rootfs="$work/bundle/rootfs"
mkdir -p "$rootfs/proc" "$rootfs/dev"
mount -t proc proc "$rootfs/proc"
mount --bind /dev "$rootfs/dev"      # a container runtime gives /dev/null, /dev/urandom too
version=$(chroot --userspec=10001:10001 "$rootfs" /opt/jre/bin/java -cp '/opt/tidemark/lib/*' io.tidemark.cli.Main --version)
[[ "$version" == tidemark* ]] || fail "the image's JRE did not run tidemark --version: $version"
echo "check-image: $img OK: $(grep -o '"Digest": "[^"]*"' <<<"$inspect" | head -1), $version, $(grep -c '"sha256:' <<<"$inspect") layer(s)" >&2
if $run; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  install -d -o 10001 -g 10001 "$rootfs/var/lib/tidemark"
  printf 'host: image-check\ndata: /var/lib/tidemark\nkafka: ""\nqmpDir: /run/tidemark/qmp\npolicies: /etc/tidemark/policies\nmetrics: 127.0.0.1:%s\n' "$port" \
    > "$rootfs/etc/tidemark/tidemark.yaml"
  # the image's entrypoint and command, as uid 10001, with the image's environment
  env -i JDK_JAVA_OPTIONS=-Xmx512m TIDEMARK_ROLES=scheduler,replicator HOSTNAME=image-check \
    /usr/sbin/chroot --userspec=10001:10001 "$rootfs" /opt/jre/bin/java -cp '/opt/tidemark/lib/*' io.tidemark.cli.Main \
    run --config /etc/tidemark/tidemark.yaml > "$work/engine.log" 2>&1 &
  engine=$!
  started=$(date +%s)
  until curl -sf "http://127.0.0.1:$port/readyz" > "$work/readyz.json"; do
    kill -0 "$engine" 2>/dev/null || { cat "$work/engine.log" >&2; fail "the engine in the image exited"; }
    [ $(( $(date +%s) - started )) -lt 180 ] || { cat "$work/engine.log" >&2; fail "no /readyz 200 within 180 s"; }
    sleep 1
  done
  echo "check-image: the engine in the image is ready after $(( $(date +%s) - started )) s: $(cat "$work/readyz.json")" >&2
fi
