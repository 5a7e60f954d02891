#!/usr/bin/env bash
# Fetch an Apache Kafka broker (kafka_2.13 + its runtime classpath + a Log4j 2 binding) from Maven
# Central into a cache OUTSIDE the repository, once:
#   ${XDG_CACHE_HOME:-~/.cache}/proxywhirl-metrics/kafka-<version>/libs
# Usage: scripts/kafka/fetch.sh [VERSION]     (default: $KAFKA_VERSION, else 4.4.0)
# Prints the libs directory on stdout (Maven's own output goes to stderr). Idempotent: a stamp
# file records a complete fetch of this pom; concurrent callers serialise on a lock file.
# Exit codes: 0 ok, 2 Maven missing, 3 the fetch failed or is incomplete.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=${1:-${KAFKA_VERSION:-4.4.0}}
dest=${XDG_CACHE_HOME:-$HOME/.cache}/proxywhirl-metrics/kafka-$version
libs=$dest/libs
stamp=$dest/.fetched
want="$version $(sha256sum "$here/pom.xml" | cut -d' ' -f1)"

fetched() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$libs/kafka_2.13-$version.jar" ]; }

if fetched; then
    echo "$libs"
    exit 0
fi
if ! command -v mvn >/dev/null 2>&1; then
    echo "kafka/fetch.sh: mvn not found (install Maven: scripts/bootstrap-system.sh)" >&2
    exit 2
fi
mkdir -p "$dest"
exec 9>"$dest/.lock"
flock 9
if fetched; then # another process finished the fetch while we waited for the lock
    echo "$libs"
    exit 0
fi
tmp=$(mktemp -d "$dest/libs.partial.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "kafka/fetch.sh: resolving org.apache.kafka:kafka_2.13:$version from Maven Central" >&2
if ! mvn -B -q -f "$here/pom.xml" -Dkafka.version="$version" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >&2; then
    echo "kafka/fetch.sh: Maven could not resolve Kafka $version" >&2
    exit 3
fi
if [ ! -f "$tmp/kafka_2.13-$version.jar" ]; then
    echo "kafka/fetch.sh: kafka_2.13-$version.jar missing after the fetch" >&2
    exit 3
fi
rm -rf "$libs" "$dest/cds" # class-data archives are tied to the exact classpath
mv "$tmp" "$libs"
trap - EXIT
echo "$want" >"$stamp"
echo "$libs"
