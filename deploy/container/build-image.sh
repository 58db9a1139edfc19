#!/usr/bin/env bash
# Builds the Tidemark container image for the control-plane roles (scheduler, replicator) without a
# Docker daemon: buildah from `scratch` + a jlinked JRE + the glibc libraries it needs + the
# distribution's lib/. Writes an OCI archive and checks it (check-image.sh).
#   deploy/container/build-image.sh [--run] [DIST_DIR] [OUT.tar]
#   DIST_DIR  the unpacked distribution (default: dist/target/tidemark-V/tidemark-V, from `mvn package`)
#   OUT.tar   default: dist/target/tidemark-image.tar (oci-archive, image name tidemark:V)
# Needs root, buildah, skopeo, umoci (deploy/install-deps.sh). About 30-60 s, most of it jlink.
# The worker is not in this image: it runs on each hypervisor host next to QEMU (the Debian package,
# or the DaemonSet in deploy/k8s, which uses this image with the host's QMP directory mounted).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
check_args=(); if [ "${1:-}" = --run ]; then check_args=(--run); shift; fi   # --run: check-image.sh --run
version=$(sed -n 's:^  <version>\(.*\)</version>:\1:p' "$root/pom.xml" | head -1)
dist=$(readlink -f "${1:-$root/dist/target/tidemark-$version/tidemark-$version}")
out=$(readlink -m "${2:-$root/dist/target/tidemark-image.tar}")
[ -x "$dist/bin/tidemark" ] || { echo "build-image: no distribution in $dist: run mvn package in dist/ first" >&2; exit 1; }
for tool in buildah skopeo umoci jlink; do
  command -v $tool >/dev/null || { echo "build-image: $tool is missing: run deploy/install-deps.sh" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "build-image: buildah from scratch needs root here" >&2; exit 1; }

work=$(mktemp -d /tmp/tidemark-image.XXXXXX)
ctr=""
export STORAGE_DRIVER=vfs   # no overlay in nested containers; vfs always works
cleanup() {
  if [ -n "$ctr" ]; then buildah umount "$ctr" >/dev/null 2>&1 || true; buildah rm "$ctr" >/dev/null 2>&1 || true; fi
  buildah rmi "tidemark-build-$$" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The JRE: the modules `jdeps --ignore-missing-deps --multi-release 17 --print-module-deps
# --class-path 'lib/*' lib/tidemark-*.jar` lists (40 s, so not at every build), plus TLS (EC) and
# management for Kafka's client metrics.
modules=java.base,java.compiler,java.desktop,java.management,java.naming,java.net.http,java.rmi,java.scripting
modules=$modules,java.security.jgss,java.security.sasl,java.sql,jdk.httpserver,jdk.net,jdk.unsupported
modules=$modules,jdk.crypto.ec,jdk.management,jdk.zipfs
jlink --add-modules "$modules" --strip-debug --no-man-pages --no-header-files --compress=2 --output "$work/jre"
# Debian's JDK points cacerts at /etc/ssl/certs/java/cacerts: put the real file in the image
rm -f "$work/jre/lib/security/cacerts"
cp -L /etc/ssl/certs/java/cacerts "$work/jre/lib/security/cacerts"

# scratch has no libc: the shared libraries the JRE loads, at their own paths
libs=$( { ldd "$work/jre/bin/java"; find "$work/jre/lib" -name '*.so' -exec ldd {} \; ; } 2>/dev/null \
  | grep -o '/[^ ]*\.so[^ ]*' | sort -u)

ctr=$(buildah from scratch)
mnt=$(buildah mount "$ctr")
install -d -m 0755 "$mnt/opt" "$mnt/etc/tidemark/policies" "$mnt/lib64" "$mnt/run/tidemark/qmp"
install -d -m 1777 "$mnt/tmp"
install -d -m 0750 -o 10001 -g 10001 "$mnt/var/lib/tidemark"
cp -a "$work/jre" "$mnt/opt/jre"
for lib in $libs; do
  install -D -m 0755 "$(readlink -f "$lib")" "$mnt$lib"
done
install -d -m 0755 "$mnt/opt/tidemark"
cp -r "$dist/lib" "$mnt/opt/tidemark/lib"
chmod -R u=rwX,go=rX "$mnt/opt/tidemark"
install -m 0644 "$dist/etc/tidemark.yaml" "$mnt/etc/tidemark/tidemark.yaml"
printf 'root:x:0:0:root:/root:/sbin/nologin\ntidemark:x:10001:10001:Tidemark engine:/var/lib/tidemark:/sbin/nologin\n' > "$mnt/etc/passwd"
printf 'root:x:0:\ntidemark:x:10001:\n' > "$mnt/etc/group"
printf 'hosts: files dns\n' > "$mnt/etc/nsswitch.conf"
buildah umount "$ctr" >/dev/null

buildah config \
  --entrypoint '["/opt/jre/bin/java", "-cp", "/opt/tidemark/lib/*", "io.tidemark.cli.Main"]' \
  --cmd '["run", "--config", "/etc/tidemark/tidemark.yaml"]' \
  --user 10001:10001 \
  --workingdir /var/lib/tidemark \
  --env JDK_JAVA_OPTIONS="-Xms32m -XX:MaxRAMPercentage=75 -XX:+UseSerialGC -XX:MaxMetaspaceSize=192m -XX:ReservedCodeCacheSize=64m -XX:MaxDirectMemorySize=128m" \
  --env TIDEMARK_ROLES=scheduler,replicator \
  --port 9464 \
  --label org.opencontainers.image.title=tidemark \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.description="Tidemark engine: scheduler and replicator roles (the worker runs on each hypervisor host)" \
  "$ctr"
buildah commit --quiet "$ctr" "tidemark-build-$$" >/dev/null
rm -f "$out"
buildah push --quiet "tidemark-build-$$" "oci-archive:$out:tidemark:$version"
echo "build-image: $out ($(du -h "$out" | cut -f1)), image tidemark:$version" >&2
"$(dirname "$0")/check-image.sh" "${check_args[@]}" "$out"
