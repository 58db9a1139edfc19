#!/usr/bin/env bash
# The whole test suite: unit tests (*Test) and integration tests (*IT) against real QEMU, Kafka
# (embedded KRaft) and S3 (S3Proxy), plus the formatter check. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
exec mvn -B -ntp verify "$@"
