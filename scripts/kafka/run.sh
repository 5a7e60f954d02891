#!/usr/bin/env bash
# Run a local single-node Apache Kafka (KRaft broker + controller) on 127.0.0.1 in the foreground,
# from the Maven Central jars (fetched once by scripts/kafka/fetch.sh), until Ctrl-C.
# Usage: scripts/kafka/run.sh [--port 9092] [--data-dir DIR] [--auto-create-topics]
#   --data-dir keeps the data between runs (otherwise a temp dir, deleted on exit).
#   PWM_TEST_KAFKA_VERSION=X.Y.Z picks another Kafka; PWM_TEST_KAFKA_HEAP_MB the heap (512).
# The same code (tests/support/kafka_broker.py) is what the test fixtures run.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python -m tests.support.kafka_broker "$@"
