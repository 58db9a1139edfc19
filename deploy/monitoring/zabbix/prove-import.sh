#!/usr/bin/env bash
# Proves tidemark_template.yaml against a real, throwaway Zabbix 6.0 server (Debian's zabbix-server-pgsql
# and zabbix-frontend-php, installed by deploy/install-deps.sh): imports it through the API, adds a host
# that scrapes METRICS_URL, waits until discovered items have values (and each --expect-item KEY has one,
# however late its discovery rule runs) and, for each --expect-trigger TEXT, until a
# trigger whose name contains that text fires. Everything (PostgreSQL, zabbix_server, the PHP frontend)
# runs in a scratch directory and is stopped on exit. Needs root (PostgreSQL runs as postgres, the
# server as zabbix). About a minute.
#
#   deploy/monitoring/zabbix/prove-import.sh http://127.0.0.1:9464 [--expect-trigger 'does not answer']...
#       [--expect-item 'tidemark.target.up[s3]']... [--timeout 150]
#
# Prints one line per fact it proved; exit 0 when all were, 1 otherwise.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
url="${1:?usage: prove-import.sh METRICS_BASE_URL [--expect-trigger TEXT]... [--expect-item KEY]... [--timeout SECONDS]}"
shift
expect=""
expect_items=""
timeout=150
while [ $# -gt 0 ]; do
  case "$1" in
    --expect-trigger) expect="$expect$2\n"; shift 2 ;;
    --expect-item) expect_items="$expect_items$2\n"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
for c in zabbix_server php psql curl python3; do
  command -v "$c" >/dev/null || { echo "prove-import: $c is missing; run deploy/install-deps.sh" >&2; exit 1; }
done
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
# a free port in 20000-32767 (zabbix_server takes no ListenPort above 32767)
free_port() {
  python3 -c '
import random, socket
for _ in range(100):
    p = random.randint(20000, 32767)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()'
}
dir=$(mktemp -d /tmp/tidemark-zabbix.XXXXXX)
chmod 755 "$dir"
pg_port=$(free_port); zbx_port=$(free_port); web_port=$(free_port)
php_pid=""
cleanup() {
  [ -n "$php_pid" ] && kill "$php_pid" 2>/dev/null || true
  if [ -f "$dir/zbx/zabbix_server.pid" ]; then
    kill "$(cat "$dir/zbx/zabbix_server.pid")" 2>/dev/null || true
    for _ in $(seq 50); do [ -f "$dir/zbx/zabbix_server.pid" ] || break; sleep 0.2; done
  fi
  su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $dir/pg stop -m fast" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
# for debugging the template: keep everything up for a while after the proof
[ -n "${TIDEMARK_ZBX_KEEP:-}" ] && trap 'echo "frontend on http://127.0.0.1:$web_port (Admin/zabbix)"; sleep "$TIDEMARK_ZBX_KEEP" || true; cleanup' EXIT

# a throwaway PostgreSQL with Zabbix's schema
mkdir -p "$dir/pg" && chown postgres "$dir/pg"
su postgres -s /bin/sh -c "$pgbin/initdb -D $dir/pg -A trust -U postgres" >"$dir/initdb.log"
su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $dir/pg -l $dir/pg/log -w -o '-p $pg_port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off' start" >/dev/null
psql -q -h 127.0.0.1 -p "$pg_port" -U postgres -c "create role zabbix login password 'zbx'" -c "create database zabbix owner zabbix"
for f in schema images data; do
  zcat "/usr/share/zabbix-server-pgsql/$f.sql.gz" | PGPASSWORD=zbx psql -q -h 127.0.0.1 -p "$pg_port" -U zabbix zabbix >/dev/null
done
echo "zabbix database ready"

# the server, reloading its configuration cache often so new items are polled at once
mkdir -p "$dir/zbx" && chown zabbix "$dir/zbx"
cat >"$dir/zbx/zabbix_server.conf" <<EOF
ListenPort=$zbx_port
DBHost=127.0.0.1
DBPort=$pg_port
DBName=zabbix
DBUser=zabbix
DBPassword=zbx
LogFile=$dir/zbx/zabbix_server.log
PidFile=$dir/zbx/zabbix_server.pid
SocketDir=$dir/zbx
CacheUpdateFrequency=2
StartPollers=2
StartHTTPPollers=1
StartPreprocessors=2
StartDiscoverers=0
StartPingers=0
StartSNMPTrapper=0
StartLLDProcessors=1
StartEscalators=1
StartAlerters=1
StartHistoryPollers=1
StartReportWriters=0
HousekeepingFrequency=0
EOF
zabbix_server -c "$dir/zbx/zabbix_server.conf"

# the frontend (the API lives there), served by PHP's built-in server
cp -a /usr/share/zabbix "$dir/web"
sed -i "s|/etc/zabbix/zabbix.conf.php|$dir/web/conf/zabbix.conf.php|" "$dir/web/include/classes/core/CConfigFile.php"
cat >"$dir/web/conf/zabbix.conf.php" <<EOF
<?php
\$DB['TYPE'] = 'POSTGRESQL'; \$DB['SERVER'] = '127.0.0.1'; \$DB['PORT'] = '$pg_port'; \$DB['DATABASE'] = 'zabbix';
\$DB['USER'] = 'zabbix'; \$DB['PASSWORD'] = 'zbx'; \$DB['SCHEMA'] = ''; \$DB['ENCRYPTION'] = false;
\$DB['KEY_FILE'] = ''; \$DB['CERT_FILE'] = ''; \$DB['CA_FILE'] = ''; \$DB['VERIFY_HOST'] = false;
\$DB['CIPHER_LIST'] = ''; \$DB['VAULT_URL'] = ''; \$DB['VAULT_DB_PATH'] = ''; \$DB['VAULT_TOKEN'] = '';
\$DB['DOUBLE_IEEE754'] = true;
\$ZBX_SERVER = '127.0.0.1'; \$ZBX_SERVER_PORT = '$zbx_port'; \$ZBX_SERVER_NAME = 'tidemark-proof';
\$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;
EOF
php -S "127.0.0.1:$web_port" -t "$dir/web" >"$dir/php.log" 2>&1 &
php_pid=$!

# the API steps and waits, in Python for the JSON
python3 - "$web_port" "$here/tidemark_template.yaml" "$url" "$(printf '%b' "$expect")" "$timeout" "$(printf '%b' "$expect_items")" <<'PY'
import json, sys, time, urllib.request
port, template, metrics, timeout = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[5])
expect = [t for t in sys.argv[4].split("\n") if t]
expect_items = [k for k in sys.argv[6].split("\n") if k]
api = f"http://127.0.0.1:{port}/api_jsonrpc.php"
auth = None
def call(method, params):
    body = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
    if auth:
        body["auth"] = auth
    req = urllib.request.Request(api, json.dumps(body).encode(), {"Content-Type": "application/json-rpc"})
    with urllib.request.urlopen(req, timeout=30) as r:
        answer = json.load(r)
    if "error" in answer:
        raise SystemExit(f"API {method} failed: {answer['error']}")
    return answer["result"]
deadline = time.time() + 30
while True:
    try:
        print("Zabbix API", call("apiinfo.version", {}))
        break
    except (OSError, ValueError):
        if time.time() > deadline:
            raise
        time.sleep(0.5)
auth = call("user.login", {"username": "Admin", "password": "zabbix"})
rule = {"createMissing": True, "updateExisting": True}
call("configuration.import", {"format": "yaml", "source": open(template).read(), "rules": {
    "template_groups" if False else "groups": rule, "templates": rule, "items": rule, "triggers": rule,
    "discoveryRules": rule, "templateLinkage": {"createMissing": True}}})
tpl = call("template.get", {"filter": {"host": "Tidemark by HTTP"}, "output": ["templateid"]})[0]["templateid"]
counts = {k: len(call(m, {"templateids": tpl, "output": ["name"], **extra}))
          for k, m, extra in [("items", "item.get", {}), ("discovery rules", "discoveryrule.get", {}),
                              ("triggers", "trigger.get", {}), ("item prototypes", "itemprototype.get", {}),
                              ("trigger prototypes", "triggerprototype.get", {})]}
print("imported template:", ", ".join(f"{v} {k}" for k, v in counts.items()))
group = call("hostgroup.create", {"name": "Tidemark proof"})["groupids"][0]
host = call("host.create", {
    "host": "tidemark-engine", "groups": [{"groupid": group}], "templates": [{"templateid": tpl}],
    "macros": [{"macro": "{$TIDEMARK.URL}", "value": metrics}, {"macro": "{$TIDEMARK.INTERVAL}", "value": "2s"},
               {"macro": "{$TIDEMARK.TARGET.DOWN.FOR}", "value": "6s"},
               {"macro": "{$TIDEMARK.ROLE.DOWN.FOR}", "value": "6s"},
               {"macro": "{$TIDEMARK.RPO.FOR}", "value": "6s"},
               {"macro": "{$TIDEMARK.BUDGET.FOR}", "value": "6s"}]})["hostids"][0]
print("host created, scraping", metrics)
deadline = time.time() + timeout
seen_items = False
seen_triggers = set()
while time.time() < deadline:
    items = call("item.get", {"hostids": host, "output": ["key_", "lastvalue", "lastclock", "flags", "state", "error"]})
    discovered = [i for i in items if i["flags"] == "4" and i["lastclock"] != "0"]
    plain = [i for i in items if i["flags"] == "0" and i["lastclock"] != "0" and i["key_"] != "tidemark.get_metrics"]
    valued = {i["key_"] for i in discovered + plain}
    if discovered and plain and all(k in valued for k in expect_items) and not seen_items:
        seen_items = True
        print(f"items have values: {len(plain)} plain, {len(discovered)} discovered:",
              ", ".join(f"{i['key_']}={i['lastvalue']}" for i in sorted(discovered + plain, key=lambda i: i["key_"])))
    fired = call("trigger.get", {"hostids": host, "filter": {"value": 1}, "output": ["description"], "expandDescription": True})
    for e in expect:
        if any(e in t["description"] for t in fired) and e not in seen_triggers:
            seen_triggers.add(e)
            print("trigger fired:", [t["description"] for t in fired if e in t["description"]])
    if seen_items and len(seen_triggers) == len(expect):
        break
    time.sleep(1)
if not seen_items:
    bad = [f"{i['key_']}: {i['error']}" for i in items if i["state"] == "1"]
    missing = [k for k in expect_items if k not in valued]
    raise SystemExit(f"no discovered item got a value within {timeout}s (expected items without one: {missing});"
                     f" unsupported: {bad[:8]}")
if len(seen_triggers) < len(expect):
    missing = [e for e in expect if e not in seen_triggers]
    raise SystemExit(f"no trigger containing {missing} fired within {timeout}s; firing: {[t['description'] for t in fired]}")
unsupported = [f"{i['key_']}: {i['error']}" for i in items if i["state"] == "1"]
print("unsupported items:", unsupported if unsupported else "none")
print("PROVED")
PY
