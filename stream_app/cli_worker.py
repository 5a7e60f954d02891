"""``proxywhirl-metrics worker | simulate | topics create``: the distributed-mode commands.

- ``worker [--config FILE] [--rules FILE] ...``: run the Faust stream worker until SIGINT/SIGTERM
  (exit 0), or until it fails for good (exit 1); an invalid rules file exits 2 at once.
  Settings: ``PWM_WORKER_*`` and ``PWM_STORAGE_*`` environment variables, the YAML file
  (``worker:`` and ``storage:`` sections), then these flags; alerting (rules, delivery) from
  ``PWM_ALERTING_*`` (off without a rules file).
- ``simulate [--rate N] [--duration S] [--scenario FILE] ...``: a simulated fleet (the bundled
  demo fleet and its scripted incidents, or your scenario) emitting in real time through the
  real producer and its Kafka transport (``PWM_PRODUCER_*``, ``PWM_PRODUCER_KAFKA_*``,
  ``PWM_SIMULATOR_*``), until the duration ends or SIGINT/SIGTERM; prints what was sent.
- ``topics create [--config FILE] ...``: create the deployment's topics with the partitions and
  retention of the worker settings (existing topics are reported, not changed).

:func:`add_worker_commands` registers them on an argparse sub-parser set; each sets
``args.handler`` to a function returning the process exit code. Invalid settings raise
``pydantic.ValidationError`` (the main CLI prints it and exits 2).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from stream_app.worker.settings import TopicSettings, load_worker_settings

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "add_worker_commands",
    "simulate_command",
    "topics_create_command",
    "worker_command",
]

EXIT_OK = 0
EXIT_FAILED = 1


def _given(args: argparse.Namespace, mapping: dict[str, str]) -> dict[str, Any]:
    """``{setting: value}`` for the flags that were given (``mapping``: flag dest -> setting)."""
    return {
        setting: getattr(args, dest)
        for dest, setting in mapping.items()
        if getattr(args, dest, None) is not None
    }


_WORKER_FLAGS = {
    "bootstrap_servers": "bootstrap_servers",
    "topic_prefix": "topic_prefix",
    "app_id": "app_id",
    "metrics_host": "metrics_host",
    "metrics_port": "metrics_port",
}
_STORAGE_FLAGS = {"dsn": "dsn", "data_dir": "data_dir", "database": "database"}


@contextlib.contextmanager
def _stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> Iterator[None]:
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        yield
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def worker_command(args: argparse.Namespace) -> int:
    """Run the stream worker (see the module docstring); returns the exit code."""
    from stream_app.alerting.errors import RulesFileError
    from stream_app.alerting.rules_watcher import load_rules_file
    from stream_app.alerting.settings import AlertingSettings
    from stream_app.worker.service import run_worker

    settings, storage = load_worker_settings(
        args.config,
        worker=_given(args, _WORKER_FLAGS),
        storage=_given(args, _STORAGE_FLAGS),
    )
    alerting = AlertingSettings(**_given(args, {"rules_file": "rules_file"}))
    try:
        if alerting.rules_file is not None:  # refuse a broken rules file before starting
            load_rules_file(alerting.rules_file)
    except RulesFileError as exc:
        print(f"proxywhirl-metrics: invalid rules file {exc.path}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2

    async def main() -> int:
        stop = asyncio.Event()
        with _stop_on_signals(asyncio.get_running_loop(), stop):
            return await run_worker(settings, storage, stop, alerting=alerting)

    return asyncio.run(main())


def topics_create_command(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Create the topics; prints one line per topic. Exit 1 when Kafka cannot be reached."""
    from stream_app.worker.errors import WorkerError
    from stream_app.worker.topics import create_topics

    out = out or sys.stdout
    overrides = _given(
        args, {"bootstrap_servers": "bootstrap_servers", "topic_prefix": "topic_prefix"}
    )
    settings, _ = load_worker_settings(args.config, worker=overrides)
    topics = _given(
        args, {"partitions": "requests_partitions", "replication_factor": "replication_factor"}
    )
    if topics:
        merged = TopicSettings.model_validate({**settings.topics.model_dump(), **topics})
        settings = settings.model_copy(update={"topics": merged})
    try:
        outcomes = asyncio.run(create_topics(settings, timeout_s=args.timeout_s))
    except WorkerError as exc:
        print(f"topics create failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for name, outcome in sorted(outcomes.items()):
        print(f"{name}: {outcome}", file=out)
    return EXIT_OK


def simulate_command(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Run a simulated fleet against Kafka (see the module docstring)."""
    from stream_app.worker.simulate import SimulateOptions, run_simulation

    options = SimulateOptions(
        simulator=_given(
            args,
            {
                "scenario": "scenario",
                "seed": "seed",
                "rate": "rate_per_s",
                "duration": "duration_s",
            },
        ),
        producer=_given(args, {"source_host": "source_host"}),
        kafka=_given(
            args,
            {
                "bootstrap_servers": "bootstrap_servers",
                "topic_prefix": "topic_prefix",
                "spool_path": "spool_path",
            },
        ),
    )

    async def main() -> int:
        stop = asyncio.Event()
        with _stop_on_signals(asyncio.get_running_loop(), stop):
            return await run_simulation(options, stop, out=out or sys.stdout)

    return asyncio.run(main())


def _add_kafka_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap-servers", help="host:port[,host:port...]")
    parser.add_argument("--topic-prefix", help="topics are <prefix>.requests, ...")


def add_worker_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``worker``, ``simulate`` and ``topics create``; each sets ``args.handler``."""
    worker = subparsers.add_parser(
        "worker", help="run the Faust stream worker (Kafka -> ClickHouse)"
    )
    worker.add_argument("--config", type=Path, help="YAML settings file (worker:, storage:)")
    _add_kafka_flags(worker)
    worker.add_argument("--app-id", help="Faust app id = consumer group")
    worker.add_argument("--dsn", help="ClickHouse: chdb:///path or http(s)://host:port")
    worker.add_argument("--data-dir", type=Path, help="embedded engine base directory")
    worker.add_argument("--database", help="ClickHouse database")
    worker.add_argument("--metrics-host", help="bind address of /metrics and /health")
    worker.add_argument("--metrics-port", type=int, help="port of /metrics and /health (0: off)")
    worker.add_argument(
        "--rules",
        dest="rules_file",
        type=Path,
        help="alert rules YAML (or PWM_ALERTING_RULES_FILE)",
    )
    worker.set_defaults(handler=worker_command)

    simulate = subparsers.add_parser(
        "simulate", help="simulated fleet producing to Kafka in real time (scripted incidents)"
    )
    _add_kafka_flags(simulate)
    simulate.add_argument("--scenario", type=Path, help="fleet scenario YAML (default: demo fleet)")
    simulate.add_argument("--seed", type=int, help="simulator seed")
    simulate.add_argument("--rate", type=float, help="total requests per second")
    simulate.add_argument("--duration", type=float, help="stop after N seconds")
    simulate.add_argument("--source-host", help="this simulated host's name")
    simulate.add_argument("--spool-path", type=Path, help="SQLite spool for broker outages")
    simulate.set_defaults(handler=simulate_command)

    topics = subparsers.add_parser("topics", help="Kafka topic commands")
    topic_commands = topics.add_subparsers(dest="topics_command", required=True)
    create = topic_commands.add_parser("create", help="create the topics from the settings")
    create.add_argument("--config", type=Path, help="YAML settings file (worker: section)")
    _add_kafka_flags(create)
    create.add_argument("--partitions", type=int, help="partitions of <prefix>.requests")
    create.add_argument("--replication-factor", type=int, help="replication factor")
    create.add_argument("--timeout", dest="timeout_s", type=float, default=30.0, help="seconds")
    create.set_defaults(handler=topics_create_command)


def main(argv: list[str] | None = None) -> int:
    """Run these commands standalone: ``python -m stream_app.cli_worker worker ...``."""
    from pydantic import ValidationError

    from stream_app.logging_setup import configure_logging

    parser = argparse.ArgumentParser(prog="proxywhirl-metrics")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument("--log-json", action="store_true", help="log as JSON lines")
    add_worker_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    configure_logging(args.log_level, json_lines=args.log_json)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ValidationError as exc:
        print(f"proxywhirl-metrics: invalid configuration:\n{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
