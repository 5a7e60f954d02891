#!/usr/bin/env bash
# Install the machine packages the test suite runs for real: Java 17 and Maven (Kafka from Maven
# Central jars), Prometheus + promtool, Alertmanager (+ amtool), kcat, Chromium. Debian/Ubuntu
# only; skips what is already there. Needs root (or sudo) the first time. Then fetches the Kafka
# broker jars into the user cache once (scripts/kafka/fetch.sh; the test fixtures do it too).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
add() { [[ " ${need[*]-} " == *" $1 "* ]] || need+=("$1"); }
command -v java >/dev/null 2>&1 || add openjdk-17-jre-headless
command -v mvn >/dev/null 2>&1 || add maven
command -v prometheus >/dev/null 2>&1 || add prometheus
command -v promtool >/dev/null 2>&1 || add prometheus
command -v prometheus-alertmanager >/dev/null 2>&1 || add prometheus-alertmanager
command -v amtool >/dev/null 2>&1 || add prometheus-alertmanager
command -v kcat >/dev/null 2>&1 || add kcat
[ -x /usr/bin/chromium ] || add chromium
if [ ${#need[@]} -gt 0 ]; then
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
fi
# Kafka jars (idempotent, instant once cached). Not fatal here: the Kafka fixtures fetch on first
# use and report a failure there (or use KAFKA_BOOTSTRAP_SERVERS instead).
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
    scripts/kafka/fetch.sh >/dev/null || echo "bootstrap-system: Kafka jar fetch failed" >&2
fi
