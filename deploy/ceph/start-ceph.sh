#!/bin/bash
# A throwaway single-node Ceph for tests and demos: one mon, one OSD on memstore (all data in RAM)
# and radosgw, from Debian 12's packages (Pacific 16.2; deploy/install-deps.sh installs them).
# No mgr, no systemd, nothing outside DIR, loopback only. Ready in about 2 s.
#
# usage: start-ceph.sh DIR MON_PORT RGW_PORT
#   env: MEMSTORE_BYTES (OSD capacity, default 2 GiB of RAM at most)
#
# Exit 0 means ready: the OSD is up, RGW answers on http://127.0.0.1:RGW_PORT and has an S3 user.
# DIR then holds ceph.conf, keyring (every key, with caps), {mon,osd,rgw}.pid, log/ and env:
#   CEPH_CONF, CEPH_MON_HOST, CEPH_ADMIN_KEY, S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY
# Stop: kill -9 the PIDs in DIR/*.pid, then rm -rf DIR (io.tidemark.testkit.ceph.CephCluster does).
# On failure the script kills the daemons it started; see DIR/log/ for why.
#
# Settings that matter (each was needed; see shared/recipes/ceph.md):
# - fast paxos: without it every OSDMap change waits a 1 s paxos round and start-up takes ~14 s;
# - 8 PGs per pool and a high PG limit: RGW makes 6 pools, Pacific's default of 32 PGs each runs
#   out on one OSD; size-1 pools must be allowed explicitly;
# - health warnings that one small node always raises are off (no redundancy, no mgr, disk space);
#   'mon data avail crit = 0' also stops the mon from shutting itself down on a fullish disk;
# - every path (logs, sockets, pid files, data) is inside DIR, so clusters never share a file;
#   clients get an admin socket per process, so several in one JVM do not collide.
set -euo pipefail
D=$(realpath -m "${1:?usage: start-ceph.sh DIR MON_PORT RGW_PORT}")
MON_PORT=${2:?mon port}
RGW_PORT=${3:?rgw port}
T0=$(date +%s%N)
t() { echo "[$(( ($(date +%s%N) - T0) / 1000000 )) ms] $*"; }
waitfor() {  # waitfor WHAT TRIES CMD...  (0.1 s between tries)
  local what=$1 n=$2; shift 2
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "TIMEOUT waiting for $what; see $D/log" >&2; return 1; }
osd_up() { ceph osd dump -f json | grep -q '"up":1'; }
rgw_up() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RGW_PORT/")" = 200 ]; }
on_exit() {  # on failure, leave no daemon behind
  local rc=$?
  if [ "$rc" != 0 ]; then
    for f in "$D"/{rgw,osd,mon}.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
    echo "start-ceph.sh failed ($rc); logs in $D/log" >&2
  fi
  return "$rc"; }
trap on_exit EXIT

mkdir -p "$D"/{log,run,crash,mon.a,osd.0,rgw}
FSID=$(uuidgen)
OSD_UUID=$(uuidgen)
cat > "$D/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT]
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $D/keyring
log file = $D/log/\$name.log
mon cluster log file = $D/log/cluster.\$channel.log
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
run dir = $D/run
crash dir = $D/crash
ms bind ipv6 = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon warn on pool no app = false
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 1
mon data avail crit = 0
mon mgr mkfs grace = 86400
client mount timeout = 30
paxos propose interval = 0.05
paxos min wait = 0.01

[client]
admin socket = $D/run/\$name.\$pid.\$cctid.asok

[mon]
mon data = $D/mon.\$id

[osd]
osd data = $D/osd.\$id
osd objectstore = memstore
memstore device bytes = ${MEMSTORE_BYTES:-2147483648}
public addr = 127.0.0.1
cluster addr = 127.0.0.1

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $D/rgw
CONF
export CEPH_CONF="$D/ceph.conf"
K="$D/keyring"
# Every key goes into ONE keyring with its caps; 'ceph-mon --mkfs' imports them all into the auth
# database, so no 'ceph auth add' is needed later.
ceph-authtool --create-keyring "$K" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$K" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$K" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' >/dev/null
ceph-authtool "$K" --gen-key -n client.rgw --cap mon 'allow rw' --cap osd 'allow rwx' >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$D/monmap" >/dev/null
ceph-mon -i a --mkfs --monmap "$D/monmap" --keyring "$K"
t "keys, monmap, mon mkfs"
# Daemons run in the foreground (-f) in the background (&); their output goes to files, never to a
# pipe the caller would have to drain.
ceph-mon -i a -f </dev/null >>"$D/log/mon.out" 2>&1 & echo $! > "$D/mon.pid"
ceph osd new "$OSD_UUID" 0 >/dev/null   # blocks until the mon answers
t "mon up, osd.0 registered"
ceph-osd -i 0 --mkfs --osd-uuid "$OSD_UUID" 2>>"$D/log/osd-mkfs.err"
ceph-osd -i 0 -f </dev/null >>"$D/log/osd.out" 2>&1 & echo $! > "$D/osd.pid"
waitfor "osd.0 up" 300 osd_up
t "osd.0 up"
radosgw -n client.rgw -f </dev/null >>"$D/log/rgw.out" 2>&1 & echo $! > "$D/rgw.pid"
waitfor "rgw http" 600 rgw_up
t "rgw serving on 127.0.0.1:$RGW_PORT"
# after RGW answers, so the two do not race to create the default zone
S3_SECRET=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
radosgw-admin -n client.admin user create --uid=tidemark --display-name=Tidemark \
    --access-key=TIDEMARKTESTKEY --secret-key="$S3_SECRET" >/dev/null
t "rgw user created"
cat > "$D/env" <<ENV
CEPH_CONF=$D/ceph.conf
CEPH_MON_HOST=v2:127.0.0.1:$MON_PORT
CEPH_ADMIN_KEY=$(ceph-authtool "$K" -n client.admin -p)
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
S3_ACCESS_KEY=TIDEMARKTESTKEY
S3_SECRET_KEY=$S3_SECRET
ENV
t "READY"
