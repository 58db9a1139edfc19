#!/usr/bin/env python3
"""Measures continuous protection (benchmarks.md §16) on real QEMU 7.2 (TCG) and qemu-storage-daemon.

usage: continuous-protection.py SCRATCH_DIR [writes_per_round]
Needs qmp.py (recipes/qemu.md Appendix A) on PYTHONPATH. Prints one JSON line per measurement.
"""
import json, os, random, statistics, subprocess, sys, time
from qmp import QMP

D = os.path.abspath(sys.argv[1]); N = int(sys.argv[2]) if len(sys.argv) > 2 else 300
SIZE = 256 << 20

def sh(c): subprocess.run(c, shell=True, check=True)

def qsd(writethrough):
    sh(f'rm -f {D}/dr.sock')
    p = subprocess.Popen(['qemu-storage-daemon', '--blockdev', f'driver=file,filename={D}/dr.raw,node-name=f',
        '--blockdev', 'driver=raw,file=f,node-name=r', '--nbd-server', f'addr.type=unix,addr.path={D}/dr.sock',
        '--export', f'type=nbd,id=e,node-name=r,name=dr,writable=on,writethrough={"on" if writethrough else "off"}'],
        stdout=open(f'{D}/qsd.log', 'a'), stderr=subprocess.STDOUT)
    while not os.path.exists(f'{D}/dr.sock'): time.sleep(0.01)
    return p

def vm():
    sh(f'rm -f {D}/vm.qmp')
    p = subprocess.Popen(['qemu-system-x86_64', '-machine', 'q35', '-accel', 'tcg', '-display', 'none', '-nodefaults',
        '-m', '64', '-device', 'virtio-scsi-pci,id=scsi0', '-blockdev', f'driver=file,filename={D}/src.qcow2,node-name=f0',
        '-blockdev', 'driver=qcow2,file=f0,node-name=d0', '-device', 'scsi-hd,drive=d0,id=sd0,share-rw=on',
        '-qmp', f'unix:{D}/vm.qmp,server=on,wait=off'], stdout=open(f'{D}/vm.log', 'w'), stderr=subprocess.STDOUT)
    while not os.path.exists(f'{D}/vm.qmp'): time.sleep(0.01)
    time.sleep(0.1)
    return p, QMP(f'{D}/vm.qmp')

def write(q, off, ln=4096, pat=0x5a):
    t = time.perf_counter()
    q.cmd({"execute": "human-monitor-command", "arguments": {"command-line": f'qemu-io -d sd0 "write -P {pat} {off} {ln}"'}})
    return time.perf_counter() - t

def job(q):
    js = q.cmd({"execute": "query-block-jobs"})['return']
    return js[0] if js else None

def in_sync(j):
    return j and j['ready'] and not j['paused'] and j['io-status'] == 'ok' and j['len'] == j['offset']

def pct(xs, p): xs = sorted(xs); return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]

def latency(q, label):
    lat = [write(q, random.randrange(0, SIZE // 4096) * 4096) for _ in range(N)]
    print(json.dumps({"measure": "write_latency", "config": label, "writes": N, "size": 4096,
                      "p50_ms": round(1000 * statistics.median(lat), 3), "p99_ms": round(1000 * pct(lat, 99), 3),
                      "mean_ms": round(1000 * statistics.mean(lat), 3)}), flush=True)

def start_mirror(q):
    q.cmd({"execute": "blockdev-add", "arguments": {"driver": "nbd", "node-name": "dr", "export": "dr",
        "server": {"type": "unix", "path": f"{D}/dr.sock"}, "reconnect-delay": 1}})
    r = q.cmd({"execute": "blockdev-mirror", "arguments": {"job-id": "cdp", "device": "d0", "target": "dr", "sync": "full",
        "copy-mode": "write-blocking", "on-target-error": "stop", "on-source-error": "stop"}})
    assert 'return' in r, r
    while not in_sync(job(q)): time.sleep(0.02)

def stop_mirror(q):
    q.cmd({"execute": "block-job-cancel", "arguments": {"device": "cdp"}})
    while job(q): time.sleep(0.02)
    q.cmd({"execute": "blockdev-del", "arguments": {"node-name": "dr"}})

sh(f'mkdir -p {D}; rm -f {D}/*.qcow2 {D}/*.raw; qemu-img create -q -f qcow2 {D}/src.qcow2 {SIZE}; qemu-img create -q -f raw {D}/dr.raw {SIZE}')
sh(f'qemu-io -f qcow2 {D}/src.qcow2 -c "write -P 1 0 64M" >/dev/null')
v, q = vm()
for rnd in range(3):                       # rounds, order rotated
    for cfg in [["none", "wt", "wb"], ["wt", "wb", "none"], ["wb", "none", "wt"]][rnd]:
        if cfg == "none":
            latency(q, "no mirror")
            continue
        d = qsd(cfg == "wt"); start_mirror(q)
        latency(q, "active mirror, DR writethrough=" + ("on" if cfg == "wt" else "off"))
        stop_mirror(q); d.terminate(); d.wait()

# achieved RPO under a steady load: a writer thread at ~R writes/s, the supervisor's lag rule polled every 100 ms
import threading
d = qsd(True); start_mirror(q)

stop = threading.Event(); written = [0]
def load(rate=50):

    # one QMP client shared under a lock with the lag poller
    while not stop.is_set():
        with lock: write(q, random.randrange(0, SIZE // 4096) * 4096)
        written[0] += 1; time.sleep(1 / rate)
lock = threading.Lock()
t = threading.Thread(target=load, daemon=True); t.start()
lags = []; last = time.time(); t0 = time.time()
while time.time() - t0 < 20:
    with lock: j = job(q)
    now = time.time()
    if in_sync(j): last = now
    lags.append(now - last if not in_sync(j) else 0.0); time.sleep(0.1)
stop.set(); t.join()
print(json.dumps({"measure": "achieved_rpo", "load": f"{written[0]} 4 KiB writes in 20 s (~{written[0]//20}/s, random offsets)",
                  "polls": len(lags), "p50_s": round(pct(lags, 50), 3), "p99_s": round(pct(lags, 99), 3),
                  "max_s": round(max(lags), 3), "in_sync_fraction": round(sum(1 for x in lags if x == 0) / len(lags), 4)}), flush=True)

# outage and resync: stop the DR daemon, write MB during the outage, restart, resume every 0.5 s until in sync
for secs, mib in [(2, 4), (10, 32)]:
    d.terminate(); d.wait(); t_down = time.time()
    first = write(q, 0, 65536)
    for i in range(mib * 16 - 1): write(q, (64 << 20) + i * 65536, 65536, 0x33)
    while time.time() - t_down < secs: time.sleep(0.05)
    dirty = job(q); d = qsd(True); t_up = time.time()
    while True:
        j = job(q)
        if in_sync(j): break
        if j['paused']: q.cmd({"execute": "block-job-resume", "arguments": {"device": "cdp"}})
        time.sleep(0.5)
    print(json.dumps({"measure": "resync", "outage_s": secs, "written_during_outage_mib": mib,
                      "dirty_bytes_at_restart": dirty['len'] - dirty['offset'], "resync_s": round(time.time() - t_up, 2),
                      "first_write_in_outage_s": round(first, 2)}), flush=True)
q.cmd({"execute": "stop"})
r = subprocess.run(['qemu-img', 'compare', '-U', '-F', 'raw', f'{D}/src.qcow2', f'{D}/dr.raw'], capture_output=True, text=True)
print(json.dumps({"measure": "final_compare", "result": r.stdout.strip()}))
v.kill(); d.terminate()
