#!/usr/bin/env bash
# Installs the Debian packages Tidemark and its tests need: QEMU (TCG is enough), qemu-img/qemu-io,
# libnbd tools, Ceph (mon, OSD, radosgw and the CLI, which pulls in librados2 for rados-java; no mgr:
# the test clusters of deploy/ceph/start-ceph.sh run without one), the PostgreSQL server binaries
# (for the scheduler's JDBC ITs), promtool (Debian's prometheus package: the alert rules' and dashboard's
# checks), a Zabbix 6.0 server with its PHP frontend (ZabbixTemplateIT proves the template against it; no
# service starts), and a JDK + Maven if missing.
# Idempotent; does nothing when everything is there. The Ceph packages start no daemon.
set -euo pipefail
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v nbdinfo >/dev/null || need+=(libnbd-bin)
command -v openssl >/dev/null || need+=(openssl)          # ContinuousMirrorTlsIT makes a throwaway CA + NBD TLS certificates
ls /usr/lib/*/qemu/block-rbd.so >/dev/null 2>&1 || need+=(qemu-block-extra)   # restore to Ceph RBD (QEMU's rbd driver)
command -v ceph-mon >/dev/null || need+=(ceph-mon ceph-osd radosgw ceph-common)
command -v uuidgen >/dev/null || need+=(uuid-runtime)   # deploy/ceph/start-ceph.sh
command -v curl >/dev/null || need+=(curl)               # deploy/ceph/start-ceph.sh waits for RGW with it
command -v ps >/dev/null || need+=(procps)                  # NicenessTest reads each thread's nice value with ps
command -v e2fsck >/dev/null || need+=(e2fsprogs)          # tidemark drill checks restored ext4 file systems
command -v java >/dev/null || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
command -v restic >/dev/null || need+=(restic)               # tidemark bench compares incrementals with restic
command -v zstd >/dev/null || need+=(zstd)                   # tidemark bench: the CPU baseline of a full (zstd -1 + sha256sum)
command -v borg >/dev/null || need+=(borgbackup)             # tidemark bench compares the full backup with borg
# PostgreSQL server for the clustered scheduler's ITs (initdb/pg_ctl are not on PATH; the ITs run their own throwaway cluster)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null || need+=(postgresql)
command -v cpio >/dev/null || need+=(cpio)              # deploy/guest/build-tiny-guest.sh (the tiny QGA test guest)
# build-tiny-guest.sh compiles the in-guest write-latency probe (guest-write-latency.c) statically into the
# tiny guest for `tidemark bench --scenarios guest-os`; libc6-dev brings the static libc.a
command -v gcc >/dev/null || need+=(gcc libc6-dev)
# tidemark files: libguestfs's appliance (its kernel comes from deploy/guest/guestfs-kernel.sh, not linux-image-amd64),
# with XFS, NTFS and vfat tools in the appliance (FilesCommandIT builds disks with them)
command -v guestfish >/dev/null || need+=(libguestfs-tools)
[ -d /usr/share/doc/libguestfs-xfs ] || need+=(libguestfs-xfs)
command -v mkntfs >/dev/null || need+=(ntfs-3g)
command -v mkfs.vfat >/dev/null || need+=(dosfstools)
command -v depmod >/dev/null || need+=(kmod)             # deploy/guest/guestfs-kernel.sh
command -v fusermount >/dev/null || need+=(fuse3)         # tidemark mount (guestmount)
# libvirt hosts: libvirt0 for LibvirtHypervisor; libvirtd + virsh for the ITs' isolated daemon (no dnsmasq needed)
{ [ -x /usr/sbin/libvirtd ] && command -v virsh >/dev/null; } || need+=(libvirt-daemon-system libvirt-clients)
# packaging (dist/, deploy/debian, deploy/container, deploy/validate): dpkg-deb and systemd-analyze for the
# package and its units, ss for DebianPackageIT, buildah/skopeo/umoci for the daemonless OCI image,
# node + npm for the Kubernetes and compose validation
command -v dpkg-deb >/dev/null || need+=(dpkg-dev)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v ss >/dev/null || need+=(iproute2)
command -v adduser >/dev/null || need+=(adduser)
command -v setpriv >/dev/null || need+=(util-linux)
command -v buildah >/dev/null || need+=(buildah)
command -v skopeo >/dev/null || need+=(skopeo)
command -v umoci >/dev/null || need+=(umoci)
command -v npm >/dev/null || need+=(npm)
[ -f /etc/ssl/certs/java/cacerts ] || need+=(ca-certificates-java)
# monitoring as code: promtool checks deploy/monitoring (MonitoringAsCodeTest); the Zabbix template is imported
# into a throwaway Zabbix 6.0 (deploy/monitoring/zabbix/prove-import.sh, ZabbixTemplateIT)
command -v promtool >/dev/null || need+=(prometheus)
command -v zabbix_server >/dev/null || need+=(zabbix-server-pgsql)
[ -f /usr/share/zabbix/api_jsonrpc.php ] || need+=(zabbix-frontend-php)
command -v php >/dev/null || need+=(php-cli)
php -m 2>/dev/null | grep -qx pgsql || need+=(php-pgsql)
command -v chromium >/dev/null || need+=(chromium)        # StatusPageIT renders the status page headless
if [ ${#need[@]} -gt 0 ]; then
  echo "tidemark: installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
# the validators of deploy/validate (kubernetes-models, the compose spec's schema, ajv), pinned by its lock file
validate="$(cd "$(dirname "$0")" && pwd)/validate"
if [ ! -d "$validate/node_modules" ] || [ "$validate/package-lock.json" -nt "$validate/node_modules" ]; then
  echo "tidemark: installing the npm packages of deploy/validate" >&2
  (cd "$validate" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && touch node_modules)
fi
