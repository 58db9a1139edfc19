#!/bin/sh
# A throwaway, isolated, privileged libvirtd (qemu:///system semantics) for tests; nothing on the host
# changes and `rm -rf DIR` removes everything (recipes/libvirt-postgres.md §2a).
#
# usage: libvirtd-fixture.sh start DIR [SEED_CACHE_DIR] | stop DIR        (as root)
#   start: libvirtd in a private mount namespace whose /etc/libvirt, /run/libvirt, /var/lib/libvirt,
#          /var/log/libvirt and /var/cache/libvirt are bind mounts of DIR/{etc,run,lib,log,cache}.
#          QEMU runs as root without cgroups, chown, security driver or virtlogd. Waits until the
#          daemon answers. SEED_CACHE_DIR: a previous DIR/cache; copying it in skips the ~7.5 s QEMU
#          capability probe (the cache is keyed by the QEMU binary and libvirt version, so it is safe).
#   stop:  destroys every running domain (libvirtd does not), then stops libvirtd and waits for it.
# Client URI afterwards: qemu:///system?socket=DIR/sock/libvirt-sock
set -eu
cmd=$1; R=$2
U="qemu:///system?socket=$R/sock/libvirt-sock"
case $cmd in
start)
  mkdir -p "$R/etc" "$R/run" "$R/lib" "$R/log" "$R/cache" "$R/sock"
  if [ -n "${3:-}" ] && [ -d "$3/qemu" ]; then cp -a "$3/." "$R/cache/"; fi
  # mount points must exist in the root namespace (/run is a tmpfs on a fresh boot)
  mkdir -p /etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt
  cat > "$R/etc/libvirtd.conf" <<EOC
unix_sock_dir = "$R/sock"
log_outputs = "3:file:$R/libvirtd.log"
EOC
  cat > "$R/etc/qemu.conf" <<'EOC'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
EOC
  setsid unshare -m --propagation private sh -c "
    mount --bind '$R/etc'   /etc/libvirt &&
    mount --bind '$R/run'   /run/libvirt &&
    mount --bind '$R/lib'   /var/lib/libvirt &&
    mount --bind '$R/log'   /var/log/libvirt &&
    mount --bind '$R/cache' /var/cache/libvirt &&
    exec libvirtd --pid-file '$R/libvirtd.pid'" </dev/null >"$R/libvirtd.out" 2>&1 &
  # generous: the cold capability probe takes ~8 s on an idle machine, much longer on a busy one
  i=0
  until virsh -q -c "$U" version >/dev/null 2>&1; do
    i=$((i+1)); [ $i -lt 2400 ] || { echo "libvirtd did not answer within 120 s"; cat "$R/libvirtd.out"; exit 1; }
    sleep 0.05
  done
  ;;
stop)
  for d in $(virsh -q -c "$U" list --name 2>/dev/null); do virsh -q -c "$U" destroy "$d" >/dev/null || true; done
  if [ -f "$R/libvirtd.pid" ]; then
    p=$(cat "$R/libvirtd.pid"); kill "$p" 2>/dev/null || true
    i=0
    while kill -0 "$p" 2>/dev/null; do
      i=$((i+1)); [ $i -lt 600 ] || { kill -9 "$p" 2>/dev/null || true; break; }
      sleep 0.1
    done
  fi
  ;;
*)
  echo "usage: $0 start DIR [SEED_CACHE_DIR] | stop DIR" >&2; exit 1
  ;;
esac
