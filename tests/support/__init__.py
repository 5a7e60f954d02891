"""Harnesses that run real system services for the test suite, and their pytest fixtures.

Modules (one concept each):

* ``settings``: :class:`HarnessSettings`, the one configuration of the harnesses (environment).
* ``errors``: the error hierarchy below.
* ``policy``: the CI rule: a missing tool skips a test locally and fails it in CI.
* ``ports`` / ``process``: free loopback ports; a child process with a log file and a clean stop.
* ``kafka_dist``: the Apache Kafka jars from Maven Central (``scripts/kafka/fetch.sh``) and Java.
* ``kafka_config`` / ``kafka_storage``: the broker's properties; formatted KRaft storage.
* ``kafka_broker``: :class:`KafkaBroker`, a single-node KRaft broker+controller on loopback.
* ``kafka_admin``: create a topic with N partitions and wait until every partition has a leader.
* ``kafka_container``: the testcontainers path, used only where a Docker engine answers.
* ``kafka``: the Kafka fixtures (``kafka_broker``, ``kafka_bootstrap``, ``kafka_outage_broker``,
  ``kafka_topic_factory``).
* ``alertmanager``: :class:`Alertmanager` (Debian's prometheus-alertmanager) and its fixtures.
* ``prometheus``: the ``promtool`` fixture, :func:`check_rules`, and :class:`PrometheusServer`
  (a real Prometheus scraping given targets) with its ``prometheus_factory`` fixture.
* ``tools``: the ``chromium`` and ``kcat`` path fixtures.
* ``markers``: marks tests that use the Kafka/Alertmanager fixtures ``kafka``/``alertmanager``.
* ``proxies`` / ``target_server``: a loopback target server and forward proxies (producer tests).

Errors (``errors``): :class:`HarnessError` is the base. :class:`ToolMissing` (a program is not
installed) makes a test skip outside CI and fail in CI (``CI=true``). :class:`HarnessStartError`
(a service did not start, or did not answer in time) and :class:`HarnessStopError` always fail
the test: none of them is retriable by the caller.
"""
