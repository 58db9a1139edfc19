#!/usr/bin/env bash
# Builds the Debian package from the unpacked distribution archive (Maven runs it in dist/ at
# `package`; by hand: deploy/debian/build-deb.sh dist/target/tidemark-V/tidemark-V V OUTDIR).
# Writes OUTDIR/tidemark_<debian version>_all.deb and prints its path. Needs dpkg-deb only.
#   /usr/share/tidemark/{bin,lib}   the distribution (lib: the CLI's runtime class path)
#   /usr/bin/tidemark               -> ../share/tidemark/bin/tidemark
#   /etc/tidemark/tidemark.yaml     conffile, 0640 root:tidemark (postinst); policies/ 0750
#   /etc/default/tidemark           conffile, the units' environment, 0640 root:tidemark
#   /lib/systemd/system/tidemark{,-worker,-scheduler,-replicator}.service
#   /usr/lib/tmpfiles.d/tidemark.conf   /run/tidemark/qmp (2770 root:tidemark)
#   /usr/share/bash-completion/completions/tidemark
#   /usr/share/doc/tidemark/        deploy.md, configuration.md, policy-reference.md, examples/policies
set -euo pipefail
dist=$(readlink -f "$1"); version=$2; out=$(readlink -f "$3")
here=$(cd "$(dirname "$0")" && pwd); deploy=$(dirname "$here")
debversion=${version//-/\~}          # 0.1.0-SNAPSHOT -> 0.1.0~SNAPSHOT (sorts before 0.1.0)
tree="$out/deb-tree"
rm -rf "$tree"
install -d -m 0755 "$tree/DEBIAN" "$tree/usr/share/tidemark" "$tree/usr/bin" "$tree/etc/tidemark/policies" \
  "$tree/etc/default" "$tree/lib/systemd/system" "$tree/usr/lib/tmpfiles.d" \
  "$tree/usr/share/bash-completion/completions" "$tree/usr/share/doc/tidemark/examples"
cp -r "$dist/bin" "$dist/lib" "$tree/usr/share/tidemark/"
ln -s ../share/tidemark/bin/tidemark "$tree/usr/bin/tidemark"
install -m 0640 "$dist/etc/tidemark.yaml" "$tree/etc/tidemark/tidemark.yaml"
install -m 0644 "$dist/etc/policies/README" "$tree/etc/tidemark/policies/README"
install -m 0640 "$here/default" "$tree/etc/default/tidemark"
install -m 0644 "$deploy"/systemd/tidemark*.service "$tree/lib/systemd/system/"
install -m 0644 "$deploy/systemd/tidemark.tmpfiles" "$tree/usr/lib/tmpfiles.d/tidemark.conf"
install -m 0644 "$dist/share/bash-completion/completions/tidemark" "$tree/usr/share/bash-completion/completions/"
cp -r "$dist/examples/policies" "$tree/usr/share/doc/tidemark/examples/"
cp "$dist"/doc/docs/*.md "$tree/usr/share/doc/tidemark/"
chmod -R u=rwX,go=rX "$tree/usr"
chmod 0755 "$tree/usr/share/tidemark/bin/tidemark"
size=$(du -sk --exclude=DEBIAN "$tree" | cut -f1)
sed -e "s/@VERSION@/$debversion/" -e "s/@SIZE@/$size/" "$here/control.in" > "$tree/DEBIAN/control"
printf '%s\n' /etc/tidemark/tidemark.yaml /etc/tidemark/policies/README /etc/default/tidemark > "$tree/DEBIAN/conffiles"
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$tree/DEBIAN/"
deb="$out/tidemark_${debversion}_all.deb"
dpkg-deb --root-owner-group -Zgzip --build "$tree" "$deb" >/dev/null
echo "$deb"
