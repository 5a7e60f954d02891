#!/usr/bin/env bash
# Install the machine packages the test suite runs for real: Java 17 and Maven (Kafka from Maven
# Central jars), Prometheus + promtool, Alertmanager, kcat, Chromium. Debian/Ubuntu only; skips
# what is already there. Needs root (or sudo) the first time.
set -euo pipefail
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v kcat >/dev/null 2>&1 || need+=(kcat)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap-system: missing ${need[*]} and no apt-get here; install them by hand" >&2
    exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "bootstrap-system: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The Debian packages start their services; the tests run their own instances on free ports.
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
for svc in prometheus prometheus-alertmanager prometheus-node-exporter; do
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
done
