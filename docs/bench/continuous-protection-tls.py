#!/usr/bin/env python3
"""Guest 4 KiB write latency with the active mirror over NBD on TCP loopback, plain vs TLS (benchmarks.md §16.2).

usage: continuous-protection-tls.py SCRATCH_DIR [writes_per_round]
Needs qmp.py (recipes/qemu.md Appendix A) on PYTHONPATH and openssl. Prints one JSON line per measurement.
The DR site is qemu-storage-daemon serving a raw replica (write-back) on 127.0.0.1; the TLS server uses
tls-creds-x509 with verify-peer=on, the VM's nbd blockdev a client tls-creds-x509 object, as ContinuousMirror
sets them up. Configurations are rotated over three rounds in one VM.
"""
import json, os, random, statistics, subprocess, sys, time
from qmp import QMP

D = os.path.abspath(sys.argv[1]); N = int(sys.argv[2]) if len(sys.argv) > 2 else 300
SIZE = 256 << 20; PORT = 10877

def sh(c): subprocess.run(c, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def pki():
    for side in ('server', 'client'): os.makedirs(f'{D}/pki/{side}', exist_ok=True)
    sh(f'cd {D}/pki && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca-cert.pem -days 2 '
       f'-subj /CN=bench-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign')
    for side, eku in (('server', 'serverAuth'), ('client', 'clientAuth')):
        with open(f'{D}/pki/{side}.ext', 'w') as f:
            f.write(f'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n'
                    f'extendedKeyUsage={eku}\nsubjectAltName=IP:127.0.0.1\n')
        sh(f'cd {D}/pki && openssl req -newkey rsa:2048 -nodes -keyout {side}/{side}-key.pem -out {side}.csr -subj /CN=127.0.0.1'
           f' && openssl x509 -req -in {side}.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial'
           f' -out {side}/{side}-cert.pem -days 2 -extfile {side}.ext && cp ca-cert.pem {side}/')

def qsd(tls):
    args = ['qemu-storage-daemon']
    if tls: args += ['--object', f'tls-creds-x509,id=t,dir={D}/pki/server,endpoint=server,verify-peer=on']
    args += ['--blockdev', f'driver=file,filename={D}/dr.raw,node-name=f', '--blockdev', 'driver=raw,file=f,node-name=r',
             '--nbd-server', f'addr.type=inet,addr.host=127.0.0.1,addr.port={PORT}' + (',tls-creds=t' if tls else ''),
             '--export', 'type=nbd,id=e,node-name=r,name=dr,writable=on,writethrough=off']
    p = subprocess.Popen(args, stdout=open(f'{D}/qsd.log', 'a'), stderr=subprocess.STDOUT)
    import socket
    while True:
        try: socket.create_connection(('127.0.0.1', PORT), 0.2).close(); return p
        except OSError: time.sleep(0.02)

def vm():
    sh(f'rm -f {D}/vm.qmp')
    p = subprocess.Popen(['qemu-system-x86_64', '-machine', 'q35', '-accel', 'tcg', '-display', 'none', '-nodefaults',
        '-m', '64', '-device', 'virtio-scsi-pci,id=scsi0', '-blockdev', f'driver=file,filename={D}/src.qcow2,node-name=f0',
        '-blockdev', 'driver=qcow2,file=f0,node-name=d0', '-device', 'scsi-hd,drive=d0,id=sd0,share-rw=on',
        '-qmp', f'unix:{D}/vm.qmp,server=on,wait=off'], stdout=open(f'{D}/vm.log', 'w'), stderr=subprocess.STDOUT)
    while not os.path.exists(f'{D}/vm.qmp'): time.sleep(0.01)
    time.sleep(0.1)
    return p, QMP(f'{D}/vm.qmp')

def write(q, off):
    t = time.perf_counter()
    q.cmd({"execute": "human-monitor-command", "arguments": {"command-line": f'qemu-io -d sd0 "write -P 0x5a {off} 4096"'}})
    return time.perf_counter() - t

def job(q):
    js = q.cmd({"execute": "query-block-jobs"})['return']
    return js[0] if js else None

def in_sync(j): return j and j['ready'] and not j['paused'] and j['io-status'] == 'ok' and j['len'] == j['offset']

def pct(xs, p): xs = sorted(xs); return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]

def latency(q, label):
    lat = [write(q, random.randrange(0, SIZE // 4096) * 4096) for _ in range(N)]
    print(json.dumps({"measure": "write_latency", "config": label, "writes": N, "size": 4096,
                      "p50_ms": round(1000 * statistics.median(lat), 3), "p99_ms": round(1000 * pct(lat, 99), 3),
                      "load1": os.getloadavg()[0]}), flush=True)

def start_mirror(q, tls):
    add = {"driver": "nbd", "node-name": "dr", "export": "dr", "reconnect-delay": 1,
           "server": {"type": "inet", "host": "127.0.0.1", "port": str(PORT)}}
    if tls:
        r = q.cmd({"execute": "object-add", "arguments": {"qom-type": "tls-creds-x509", "id": "tm-dr-tls",
                   "dir": f"{D}/pki/client", "endpoint": "client", "verify-peer": True}})
        assert 'return' in r, r
        add["tls-creds"] = "tm-dr-tls"
    r = q.cmd({"execute": "blockdev-add", "arguments": add}); assert 'return' in r, r
    r = q.cmd({"execute": "blockdev-mirror", "arguments": {"job-id": "cdp", "device": "d0", "target": "dr", "sync": "full",
        "copy-mode": "write-blocking", "on-target-error": "stop", "on-source-error": "stop"}})
    assert 'return' in r, r
    while not in_sync(job(q)): time.sleep(0.02)

def stop_mirror(q, tls):
    q.cmd({"execute": "block-job-cancel", "arguments": {"device": "cdp"}})
    while job(q): time.sleep(0.02)
    q.cmd({"execute": "blockdev-del", "arguments": {"node-name": "dr"}})
    if tls: q.cmd({"execute": "object-del", "arguments": {"id": "tm-dr-tls"}})

sh(f'mkdir -p {D}; rm -rf {D}/pki {D}/*.qcow2 {D}/*.raw; qemu-img create -q -f qcow2 {D}/src.qcow2 {SIZE}; qemu-img create -q -f raw {D}/dr.raw {SIZE}')
sh(f'qemu-io -f qcow2 {D}/src.qcow2 -c "write -P 1 0 64M"')
pki()
v, q = vm()
for rnd in range(3):
    for cfg in [["none", "tcp", "tls"], ["tcp", "tls", "none"], ["tls", "none", "tcp"]][rnd]:
        if cfg == "none":
            latency(q, "no mirror")
            continue
        d = qsd(cfg == "tls"); start_mirror(q, cfg == "tls")
        latency(q, "active mirror, TCP loopback" + (", TLS" if cfg == "tls" else ", plain"))
        stop_mirror(q, cfg == "tls"); d.terminate(); d.wait()
q.cmd({"execute": "stop"})
r = subprocess.run(['qemu-img', 'compare', '-U', '-F', 'raw', f'{D}/src.qcow2', f'{D}/dr.raw'], capture_output=True, text=True)
print(json.dumps({"measure": "final_compare", "result": r.stdout.strip()}))
v.kill()
