"""The ``waterdrop`` command line: ``waterdrop produce`` and ``waterdrop bench``.

- ``waterdrop produce``: messages from stdin or files (one per line, raw or JSON), like kcat's
  producer mode; every message is waited for, so "delivered" means acknowledged.
- ``waterdrop bench``: produce N messages (sync, async or in batches, optionally throttled)
  and report throughput and delivery latency; ``--compare`` runs the side-by-side comparison
  with confluent-kafka from the harness in ``waterdrop._bench``, imported only when ``bench``
  runs.

Both run against an embedded in-process MockCluster unless ``--bootstrap-servers`` (or
``KAFKA_BOOTSTRAP_SERVERS``) names a real cluster. Exit codes: 0 all delivered, 1 something
failed (a delivery, an input line, the cluster), 2 a usage error (an option, a ``-X`` setting).
See docs/cli.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, NoReturn

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from waterdrop import Producer, librdkafka_features, librdkafka_version
from waterdrop._cli_input import (
    Defaults,
    Line,
    describe_contract_errors,
    lines_from,
    parse_headers,
    parse_settings,
)
from waterdrop._core import check_message
from waterdrop._version import __version__
from waterdrop.config import DEFAULT_MAX_PAYLOAD_SIZE, DEFAULT_MAX_WAIT_TIMEOUT, KAFKA_DEFAULTS
from waterdrop.contracts.wording import LIBRDKAFKA_REFUSED
from waterdrop.errors import (
    ClusterUnreachableError,
    ConfigurationInvalidError,
    Error,
    MessageInvalidError,
    ProduceError,
    WaitTimeoutError,
)
from waterdrop.testing import MockCluster

#: How long the first metadata request may take before the cluster counts as unreachable.
DEFAULT_CONNECT_TIMEOUT_MS = 10_000
#: Settings bench uses unless -X overrides them (deep queues: the loop never waits on them).
BENCH_KAFKA_DEFAULTS: dict[str, Any] = {
    "linger.ms": 5,
    "queue.buffering.max.messages": 2_000_000,
    "queue.buffering.max.kbytes": 4_000_000,
}
#: librdkafka's message.max.bytes default: a larger --max-payload-size raises it (unless -X sets
#: it), as librdkafka refuses a message above it.
_MESSAGE_MAX_BYTES = 1_000_000
#: waterdrop's own message.timeout.ms default.
_MESSAGE_TIMEOUT_MS: int = KAFKA_DEFAULTS["message.timeout.ms"]


class CliError(click.ClickException):
    """A failure the user can act on: printed as ``error: ...``, exit code 1, no traceback."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file or sys.stderr)


# ---------------------------------------------------------------------------------- helpers


def _settings_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-X", "settings", multiple=True, metavar="KEY=VALUE", callback=_settings_callback,
        help="Any librdkafka setting (repeatable), e.g. -X linger.ms=20 -X compression.type=zstd.",
    )(function)


def _settings_callback(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> dict[str, str]:
    try:
        return parse_settings(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx, param) from None


def _headers_callback(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> dict[str, str | list[str]]:
    try:
        return parse_headers(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx, param) from None


def _cluster_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed([
        click.option(
            "-b", "--bootstrap-servers", envvar="KAFKA_BOOTSTRAP_SERVERS", metavar="HOST:PORT,...",
            help="A real Kafka cluster [env KAFKA_BOOTSTRAP_SERVERS]. Default: an embedded "
            "in-process MockCluster (what is produced to it is gone when the command exits).",
        ),
        click.option(
            "--connect-timeout", type=click.IntRange(min=100), default=DEFAULT_CONNECT_TIMEOUT_MS,
            show_default=True, metavar="MS",
            help="How long the first metadata request may take before the cluster counts as "
            "unreachable.",
        ),
        click.option(
            "-v", "--verbose", is_flag=True,
            help="Show librdkafka's log lines (connection failures, retries) on stderr.",
        ),
    ]):
        function = decorator(function)
    return function


def _max_payload_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--max-payload-size", type=click.IntRange(min=1), default=DEFAULT_MAX_PAYLOAD_SIZE,
        show_default=True, metavar="BYTES",
        help="The largest payload the producer accepts (its max_payload_size). A larger one "
        "raises librdkafka's message.max.bytes with it unless -X sets that; the broker's "
        "message.max.bytes / the topic's max.message.bytes must allow it too.",
    )(function)


@dataclass
class Session:
    """A producer connected to its cluster (embedded or real), and what it saw going wrong."""

    producer: Producer
    bootstrap: str
    mock: MockCluster | None
    wait_ms: int

    @property
    def where(self) -> str:
        if self.mock is not None:
            return f"embedded MockCluster ({self.mock.brokers} brokers)"
        return self.bootstrap


def _cli_logger(verbose: bool) -> logging.Logger:
    """The producer's logger: librdkafka's log lines on stderr with -v, else nowhere.

    The command reports connection problems itself; repeated "Connect to ... failed" lines
    from librdkafka would only bury that report.
    """
    logger = logging.getLogger("waterdrop.cli.rdkafka")
    logger.propagate = False
    for old in list(logger.handlers):
        logger.removeHandler(old)
    handler: logging.Handler = logging.NullHandler()
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger


#: how a refusal by librdkafka's own check begins (it names the key and the value)
_LIBRDKAFKA_REFUSES = LIBRDKAFKA_REFUSED.split("{", 1)[0]


def _bad_setting(error: ConfigurationInvalidError, user_settings: dict[str, str]) -> NoReturn:
    problems = []
    for name, reason in error.errors.items():
        key = name.removeprefix("kafka.")
        if reason.startswith(_LIBRDKAFKA_REFUSES):   # names the key and the value itself
            problems.append(reason)
        elif name.startswith("kafka.") and key in user_settings:
            problems.append(f"{key}={user_settings[key]}: {reason}")
        else:
            problems.append(f"{name}: {reason}")
    raise click.BadParameter("; ".join(problems), param_hint="'-X'")


@contextmanager
def _session(
    *,
    bootstrap: str | None,
    settings: dict[str, str],
    topic: str,
    partitions: int,
    connect_timeout: int,
    verbose: bool,
    kafka_defaults: dict[str, Any] | None = None,
    max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
) -> Iterator[Session]:
    """Start the embedded cluster if needed, open a producer and check it reaches the cluster.

    Fails with a CliError (``producer.ping``'s ClusterUnreachableError: the servers and
    librdkafka's last cause) when no broker answers within ``connect_timeout`` ms, and with a
    usage error when librdkafka rejects a ``-X`` setting.
    """
    bootstrap = bootstrap or settings.get("bootstrap.servers") or None
    with ExitStack() as stack:
        mock: MockCluster | None = None
        if bootstrap is None:
            mock = stack.enter_context(MockCluster(brokers=3))
            mock.create_topic(topic, partitions=partitions, replication_factor=3)
            bootstrap = mock.bootstrap_servers
        kafka: dict[str, Any] = dict(kafka_defaults or {})
        if max_payload_size > DEFAULT_MAX_PAYLOAD_SIZE:
            # raised on purpose: librdkafka must take such a message too (room for its headers)
            kafka["message.max.bytes"] = max(_MESSAGE_MAX_BYTES, max_payload_size + 4096)
        kafka.update(settings)
        kafka["bootstrap.servers"] = bootstrap
        message_timeout = _MESSAGE_TIMEOUT_MS
        try:
            message_timeout = int(str(kafka.get("message.timeout.ms", message_timeout)))
        except ValueError:
            pass  # librdkafka rejects it below, with its own words
        # A wait never ends before librdkafka's own verdict on a message.
        wait_ms = (max(DEFAULT_MAX_WAIT_TIMEOUT, message_timeout + 30_000) if message_timeout
                   else 2**31)
        try:
            producer = Producer(kafka=kafka, logger=_cli_logger(verbose), max_wait_timeout=wait_ms,
                                max_payload_size=max_payload_size)
        except ConfigurationInvalidError as error:
            _bad_setting(error, settings)
        session = Session(producer, bootstrap, mock, wait_ms)
        stack.callback(producer.close)
        try:
            producer.ping(connect_timeout)   # the library's own startup check
        except ConfigurationInvalidError as error:
            _bad_setting(error, settings)
        except ClusterUnreachableError as error:
            raise CliError(
                f"cannot reach the Kafka cluster at {bootstrap} within {connect_timeout:,} ms: "
                f"{error.cause or 'nothing answered a metadata request'}"
            ) from None
        except Error as error:
            raise CliError(f"cannot start the producer for {bootstrap}: {error}") from None
        # the cluster answers: one more metadata request says whether it knows the topic
        count = producer.client.partition_count(topic, timeout_ms=connect_timeout, fresh=True)
        if count < 0:
            click.echo(
                f"warning: {bootstrap} knows no topic {topic!r} yet (producing anyway: the "
                "broker may create it)", err=True,
            )
        yield session


_OPTION_OF_FIELD = {"topic": "--topic", "key": "--key", "partition": "--partition"}


def _check_defaults(message: dict[str, Any]) -> None:
    """The command line's own message fields must pass the message contract (usage error)."""
    errors = check_message(message)
    if errors:
        hints = sorted({_OPTION_OF_FIELD.get(name.split(".")[0], "--header") for name in errors})
        raise click.BadParameter(describe_contract_errors(errors), param_hint=" / ".join(hints))


def _wait(handle: Any, wait_ms: int) -> Any:
    """The final report of a handle; a wait that outlives librdkafka's verdict is an error."""
    try:
        return handle.wait(max_wait_timeout=wait_ms, raise_response_error=False)
    except WaitTimeoutError as error:
        return error


def _code(error: Any) -> str | None:
    code = getattr(error, "code", None)
    return code if isinstance(code, str) else None


def _error_text(error: BaseException) -> str:
    """One line for an error: the contract's reasons, or librdkafka's text with its code."""
    if isinstance(error, MessageInvalidError):
        return describe_contract_errors(error.errors)
    if isinstance(error, ProduceError) and error.__cause__ is not None:
        error = error.__cause__
    code = _code(error)
    text = str(error) or type(error).__name__
    return f"{text} ({code})" if code and code not in text else text


def _show_progress(no_progress: bool) -> bool:
    return not no_progress and sys.stderr.isatty()


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not enabled,
    )


def _version_callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"waterdrop {__version__} (librdkafka {librdkafka_version()})")
    click.echo(f"librdkafka features: {' '.join(librdkafka_features())}")
    ctx.exit(0)


# ----------------------------------------------------------------------------------- the group


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--version", is_flag=True, expose_value=False, is_eager=True, callback=_version_callback,
    help="Show the waterdrop and librdkafka versions and exit.",
)
def cli() -> None:
    """waterdrop: WaterDrop's Kafka producer over librdkafka, from the command line.

    Without --bootstrap-servers (or KAFKA_BOOTSTRAP_SERVERS) every command runs against an
    embedded in-process MockCluster.
    """


# --------------------------------------------------------------------------------- produce


@dataclass
class _Tally:
    delivered: int = 0
    failed: int = 0
    invalid: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    per_partition: collections.Counter[tuple[str, int]] = field(
        default_factory=collections.Counter
    )

    def fail(self, kind: str, line: Line, reason: str) -> None:
        """Count and report (on stderr, at once) an ``invalid`` line or a ``failed`` one."""
        self.errors.append({"source": line.source, "line": line.number, "kind": kind,
                            "error": reason})
        if kind == "invalid":
            self.invalid += 1
        else:
            self.failed += 1
        label = "invalid input" if kind == "invalid" else "delivery failed"
        click.echo(f"error: {line.where}: {label}: {reason}", err=True)


@cli.command(short_help="Produce lines or JSON objects from stdin or files (like kcat -P).")
@click.option("-t", "--topic", required=True, help="Topic to produce to.")
@click.option("-k", "--key", help="Message key for every message (a JSON line may override).")
@click.option(
    "-H", "--header", "headers", multiple=True, metavar="NAME=VALUE", callback=_headers_callback,
    help="A header for every message (repeatable; the same NAME twice makes repeated headers).",
)
@click.option(
    "-p", "--partition", type=click.IntRange(min=-1),
    help="Partition for every message (default: chosen by the partitioner).",
)
@click.option(
    "-f", "--format", "fmt", type=click.Choice(["lines", "json"]), default="lines",
    show_default=True,
    help="lines: each line is a payload. json: each line is a JSON object (see docs/cli.md).",
)
@_settings_option
@_cluster_options
@click.option(
    "--partitions", type=click.IntRange(min=1), default=1, show_default=True,
    help="Partitions of the topic created on the embedded MockCluster.",
)
@_max_payload_option
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as one JSON object on the last line of stdout.")
@click.argument(
    "files", nargs=-1, type=click.Path(exists=True, dir_okay=False, allow_dash=True),
)
def produce(
    topic: str,
    key: str | None,
    headers: dict[str, str | list[str]],
    partition: int | None,
    fmt: str,
    settings: dict[str, str],
    bootstrap_servers: str | None,
    connect_timeout: int,
    verbose: bool,
    partitions: int,
    max_payload_size: int,
    as_json: bool,
    files: tuple[str, ...],
) -> None:
    """Produce messages read from FILES (default: stdin, also "-"), one per line.

    Every message is waited for: "delivered" means acknowledged by the cluster. Invalid
    input lines and failed deliveries are reported as FILE:LINE with the reason; the other
    lines are still produced. Exit code 1 when anything failed.
    """
    defaults = Defaults(topic=topic, key=key, partition=partition, headers=headers)
    _check_defaults(defaults.message(b""))
    tally = _Tally()
    interrupted = False
    out = Console(highlight=False, soft_wrap=True)
    with _session(
        bootstrap=bootstrap_servers, settings=settings, topic=topic, partitions=partitions,
        connect_timeout=connect_timeout, verbose=verbose, max_payload_size=max_payload_size,
    ) as session:
        producer = session.producer
        pending: collections.deque[tuple[Line, Any]] = collections.deque()

        def settle(line_and_handle: tuple[Line, Any]) -> None:
            line, handle = line_and_handle
            report = _wait(handle, session.wait_ms)
            if isinstance(report, BaseException):
                tally.fail("failed", line, f"not acknowledged: {report}")
            elif report.error is not None:
                tally.fail("failed", line, _error_text(report.error))
            else:
                tally.delivered += 1
                tally.per_partition[(report.topic_name, report.partition)] += 1

        def produce_line(line: Line) -> None:
            if line.message is None:
                tally.fail("invalid", line, line.error or "invalid")
                return
            try:
                handle = producer.produce_async(line.message)
            except MessageInvalidError as error:
                reason = _error_text(error)
                if "max_payload_size" in error.errors.get("payload", ""):
                    reason += " (raise it with --max-payload-size)"
                tally.fail("invalid", line, reason)
                return
            except Error as error:
                tally.fail("failed", line, _error_text(error))
                return
            line.message = None  # the handle holds what it needs; the payload can go
            pending.append((line, handle))
            # settle what is already acknowledged: bounded memory on endless input
            while pending and not pending[0][1].pending:
                settle(pending.popleft())

        order = {"<stdin>" if path == "-" else path: i for i, path in enumerate(files)}
        try:
            for path in files or ("-",):
                if path == "-":
                    # the bytes under sys.stdin (click.get_binary_stream is deprecated in 8.5)
                    stdin = getattr(sys.stdin, "buffer", sys.stdin)
                    for line in lines_from(stdin, "<stdin>", fmt, defaults):
                        produce_line(line)
                else:
                    with open(path, "rb") as stream:
                        for line in lines_from(stream, path, fmt, defaults):
                            produce_line(line)
        except KeyboardInterrupt:
            # Ctrl-C ends the input; what was sent is still waited for and summed up
            interrupted = True
            click.echo("interrupted: waiting for the messages already sent (Ctrl-C again "
                       "to abandon them)", err=True)
        while pending:
            settle(pending.popleft())
        where = session.where

    partition_rows = [
        {"topic": t, "partition": p, "delivered": n}
        for (t, p), n in sorted(tally.per_partition.items())
    ]
    summary = {
        "topic": topic,
        "cluster": "mock" if session.mock is not None else session.bootstrap,
        "interrupted": interrupted,
        "delivered": tally.delivered,
        "failed": tally.failed,
        "invalid": tally.invalid,
        "partitions": partition_rows,
        "errors": sorted(tally.errors, key=lambda e: (order.get(e["source"], 0), e["line"])),
    }
    human = Console(stderr=True, highlight=False, soft_wrap=True) if as_json else out
    status = "[green]ok[/]" if not (tally.failed or tally.invalid) else "[red]FAILED[/]"
    if interrupted:
        status = "[yellow]interrupted[/]"
    human.print(
        f"{status}: {tally.delivered:,} delivered, {tally.failed:,} failed, "
        f"{tally.invalid:,} invalid input line(s); {where}"
    )
    if tally.per_partition:
        table = Table("topic", "partition", "delivered")
        for (name, number), delivered in sorted(tally.per_partition.items()):
            table.add_row(name, str(number), f"{delivered:,}")
        human.print(table)
    if as_json:
        click.echo(json.dumps(summary))
    if interrupted:
        raise click.exceptions.Exit(130)
    if tally.failed or tally.invalid:
        raise click.exceptions.Exit(1)


# ----------------------------------------------------------------------------------- bench


_COMPARE_ONLY = ("rounds", "quick", "scenarios", "sync_messages", "inflight", "memory_rounds",
                 "flat_unit", "flat_units", "c_program")
_NOT_WITH_COMPARE = {"settings": "-X", "size": "--size", "topic": "--topic",
                     "partitions": "--partitions", "mode": "--mode", "rate": "--rate",
                     "max_payload_size": "--max-payload-size"}


@cli.command(short_help="Measure throughput and delivery latency (--compare: vs confluent-kafka).")
@click.option("-n", "--messages", type=click.IntRange(min=1),
              help="Messages to produce (default 1,000,000; --mode sync 10,000; with "
              "--compare: per round, 100,000).")
@click.option("-s", "--size", type=click.IntRange(min=0), default=100, show_default=True,
              help="Payload bytes.")
@click.option("-m", "--mode", type=click.Choice(["sync", "async", "many"]), default="many",
              show_default=True,
              help="sync: produce_sync one at a time. async: produce_async, every handle "
              "waited. many: produce_many_async in batches of --batch.")
@click.option("--batch", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Messages per produce_many_async call (--mode many).")
@click.option("-r", "--rate", type=click.FloatRange(min=0), default=0, show_default=True,
              metavar="MSGS_PER_S", help="Throttle to this many messages a second; 0: unlimited.")
@click.option("-t", "--topic", default="waterdrop-bench", show_default=True,
              help="Topic to produce to.")
@click.option("--partitions", type=click.IntRange(min=1), default=3, show_default=True,
              help="Partitions of the topic created on the embedded MockCluster.")
@_max_payload_option
@_settings_option
@_cluster_options
@click.option("--json", "as_json", is_flag=True,
              help="Print the result as one JSON object on the last line of stdout (the table "
              "goes to stderr).")
@click.option("--no-progress", is_flag=True,
              help="No live progress bar (it is shown only when stderr is a terminal anyway).")
@click.option("--compare", is_flag=True,
              help="Compare with confluent-kafka and librdkafka's C loop side by side on an "
              "embedded MockCluster in a separate process (and on --bootstrap-servers when "
              "given); needs confluent-kafka. The options below are for --compare.")
@click.option("--rounds", type=int, help="[--compare] Alternating rounds (default 5, --quick 2).")
@click.option("--quick", is_flag=True,
              help="[--compare] A small run to smoke-test the harness (not a measurement).")
@click.option("--scenarios", default="async,many,sync,memory,flat", show_default=True,
              help="[--compare] Comma-separated subset of async,many,sync,memory,flat.")
@click.option("--sync-messages", type=int, help="[--compare] produce_sync calls per round.")
@click.option("--inflight", type=int, help="[--compare] Messages in flight for peak RSS.")
@click.option("--memory-rounds", type=int, help="[--compare] Subprocess pairs for peak RSS.")
@click.option("--flat-unit", type=int,
              help="[--compare] Messages per RSS sample in the flatness loop.")
@click.option("--flat-units", "--flat-millions", "flat_units", type=int,
              help="[--compare] Samples in the flatness loop.")
@click.option("--c-program", help="[--compare] bench/c/produce_bench (default: that path "
              "under the current directory, or $WATERDROP_BENCH_C_PROGRAM).")
@click.pass_context
def bench(ctx: click.Context, /, **options: Any) -> None:
    """Produce N messages end to end and report throughput and delivery latency.

    Latency is per message, from produce call to acknowledgement. Exit code 1 when any
    message failed.
    """
    if options["compare"]:
        _compare(ctx, options)
        return
    explicit = [f"--{name.replace('_', '-')}" for name in _COMPARE_ONLY
                if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]
    if explicit:
        raise click.UsageError(f"{', '.join(explicit)}: only with --compare", ctx)
    mode: str = options["mode"]
    messages: int = options["messages"] or (10_000 if mode == "sync" else 1_000_000)
    size: int = options["size"]
    rate: float = options["rate"]
    batch: int = options["batch"]
    if mode == "many" and rate:
        batch = max(1, min(batch, int(rate // 20)))  # ~20 batches a second keeps pacing even
    topic: str = options["topic"]
    as_json: bool = options["as_json"]
    _check_defaults({"topic": topic, "payload": b""})
    max_payload_size: int = options["max_payload_size"]
    if size > max_payload_size:
        raise click.BadParameter(
            f"{size:,} bytes is above max_payload_size {max_payload_size:,}: raise it with "
            "--max-payload-size", ctx, param_hint="'--size'",
        )
    kafka_defaults = dict(BENCH_KAFKA_DEFAULTS)
    if mode == "sync":
        # one message at a time: a linger would only be waited out on every call
        kafka_defaults["linger.ms"] = 0
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    out = err if as_json else Console(highlight=False, soft_wrap=True)
    with _session(
        bootstrap=options["bootstrap_servers"], settings=options["settings"], topic=topic,
        partitions=options["partitions"], connect_timeout=options["connect_timeout"],
        verbose=options["verbose"], kafka_defaults=kafka_defaults,
        max_payload_size=max_payload_size,
    ) as session:
        with _progress(err, _show_progress(options["no_progress"])) as progress:
            result = _bench_run(session, progress, topic=topic, messages=messages, size=size,
                                mode=mode, batch=batch, rate=rate)
        where = session.where
        kafka = session.producer.config.kafka if session.producer.config else {}
        linger = kafka.get("linger.ms", kafka.get("queue.buffering.max.ms"))
    result.update({
        "linger_ms": None if linger is None else _number(linger),
        "max_payload_size": max_payload_size,
        "topic": topic,
        "partitions": options["partitions"] if session.mock is not None else None,
        "cluster": "mock" if session.mock is not None else session.bootstrap,
        "waterdrop": __version__,
        "librdkafka": librdkafka_version(),
    })
    out.print(_bench_table(result, where))
    if as_json:
        click.echo(json.dumps(result))
    if result["failed"]:
        raise click.exceptions.Exit(1)


def _bench_run(
    session: Session, progress: Progress, *, topic: str, messages: int, size: int, mode: str,
    batch: int, rate: float,
) -> dict[str, Any]:
    from waterdrop._bench.stats import percentile

    producer = session.producer
    payload = os.urandom(size // 2 + 1).hex()[:size].encode()
    try:
        producer.produce_sync(topic=topic, payload=b"warm-up")
    except Error as error:
        raise CliError(f"the warm-up message to {topic!r} failed: {_error_text(error)}") from None
    task = progress.add_task(f"{mode}", total=messages, rate="")
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()
    pending: collections.deque[Any] = collections.deque()
    acked = 0
    last_update = 0.0

    def settle(handle: Any) -> None:
        nonlocal acked
        acked += 1
        report = _wait(handle, session.wait_ms)
        if isinstance(report, BaseException):
            errors[f"not acknowledged: {report}"] += 1
        elif report.error is not None:
            errors[_error_text(report.error)] += 1
        else:
            latencies.append(report.latency_ms)

    def update(force: bool = False) -> None:
        nonlocal last_update
        now = time.perf_counter()
        if force or now - last_update > 0.1:
            last_update = now
            seconds = now - started
            progress.update(task, completed=acked,
                            rate=f"{acked / seconds:,.0f} msg/s" if seconds > 0 else "")

    def pace(last_index: int) -> None:
        """Hold message ``last_index`` (0-based) until ``last_index / rate`` s after the start."""
        if rate:
            delay = started + last_index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    started = time.perf_counter()
    if mode == "sync":
        for index in range(messages):
            pace(index)
            try:
                report = producer.produce_sync(topic=topic, payload=payload)
            except Error as error:
                errors[_error_text(error)] += 1
            else:
                latencies.append(report.latency_ms)
            acked += 1
            update()
    else:
        one = {"topic": topic, "payload": payload}
        chunk_full = [one] * batch
        sent = 0
        while sent < messages:
            count = 1 if mode == "async" else min(batch, messages - sent)
            pace(sent + count - 1)
            try:
                if mode == "async":
                    pending.append(producer.produce_async(one))
                else:
                    chunk = chunk_full if count == batch else chunk_full[:count]
                    pending.extend(producer.produce_many_async(chunk))
            except Error as error:
                # the ones a failed batch did dispatch are still waited for
                dispatched = getattr(error, "dispatched", None) or []
                pending.extend(dispatched)
                errors[_error_text(error)] += count - len(dispatched)
                acked += count - len(dispatched)
            sent += count
            while pending and not pending[0].pending:
                settle(pending.popleft())
            update()
        while pending:
            settle(pending.popleft())
            if acked % 1000 == 0:
                update()
    elapsed = time.perf_counter() - started
    update(force=True)
    latencies.sort()
    failed = sum(errors.values())
    delivered = messages - failed

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return {
        "mode": mode,
        "messages": messages,
        "size": size,
        "batch": batch if mode == "many" else None,
        "rate_limit": rate or None,
        "delivered": delivered,
        "failed": failed,
        "errors": dict(errors),
        "seconds": round(elapsed, 4),
        "messages_per_second": round(delivered / elapsed) if elapsed > 0 else None,
        "mb_per_second": round(delivered * size / elapsed / 1e6, 2) if elapsed > 0 else None,
        "latency_p50_ms": ms(percentile(latencies, 0.50)),
        "latency_p95_ms": ms(percentile(latencies, 0.95)),
        "latency_p99_ms": ms(percentile(latencies, 0.99)),
        "latency_max_ms": ms(latencies[-1] if latencies else None),
    }


def _number(value: Any) -> int | float:
    """A librdkafka setting's number (``"5"``, ``5``, ``0.5``) as an int when it is whole."""
    number = float(value)
    return int(number) if number.is_integer() else number


def _bench_table(result: dict[str, Any], where: str) -> Table:
    def num(value: Any, unit: str = "") -> str:
        if value is None:
            return "-"
        text = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
        return f"{text}{unit}"

    mode = result["mode"] + (f" (batch {result['batch']:,})" if result["batch"] else "")
    rate = f", throttled to {result['rate_limit']:,g} msg/s" if result["rate_limit"] else ""
    if result.get("linger_ms") is not None:
        rate += f", linger.ms {result['linger_ms']:g}"
    table = Table(
        title=f"waterdrop bench: {result['messages']:,} x {result['size']:,} B, {mode}{rate}\n"
        f"{where}, librdkafka {result['librdkafka']}",
        show_header=False,
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("delivered", num(result["delivered"]))
    table.add_row("failed", num(result["failed"]))
    table.add_row("elapsed", num(result["seconds"], " s"))
    table.add_row("throughput", num(result["messages_per_second"], " msg/s"))
    table.add_row("", num(result["mb_per_second"], " MB/s"))
    for name in ("p50", "p95", "p99", "max"):
        table.add_row(f"latency {name}", num(result[f"latency_{name}_ms"], " ms"))
    for reason, count in sorted(result["errors"].items(), key=lambda kv: -kv[1])[:5]:
        table.add_row("[red]error[/]", f"{count:,} x {reason}")
    return table


def _compare(ctx: click.Context, options: dict[str, Any]) -> None:
    from waterdrop._bench import options as bench_options
    from waterdrop._bench import processes, report as bench_report, scenarios, settings

    given = [flag for name, flag in _NOT_WITH_COMPARE.items()
             if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]
    if given:
        raise click.UsageError(
            "--compare uses fixed settings (100 B payloads, 3-partition topics, the same "
            "librdkafka settings on both sides, every scenario's own mode and pace): drop "
            + ", ".join(given), ctx,
        )
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        raise CliError(
            "--compare needs confluent-kafka (the library it compares with), which is not "
            "installed: pip install confluent-kafka"
        ) from None
    args = argparse.Namespace(**{name: options[name] for name in _COMPARE_ONLY},
                              messages=options["messages"])
    try:
        opts = bench_options.options_from_args(args)
    except SystemExit as error:
        raise click.UsageError(str(error.code), ctx) from None
    opts["batch"] = options["batch"]
    if processes.find_c_program(options["c_program"]) is None:
        settings.log("note: the C baseline (bench/c/produce_bench from a source checkout, or "
                        "--c-program PATH) was not found: its row is skipped")
    report = scenarios.run_comparison(opts, mock=True, real=options["bootstrap_servers"])
    report["meta"]["command"] = " ".join(["waterdrop", *sys.argv[1:]])
    if options["as_json"]:
        click.echo(bench_report.format_report(report), err=True)
        click.echo(json.dumps(report))
    else:
        click.echo(bench_report.format_report(report))


# ------------------------------------------------------------------------------ entry point


def main(argv: list[str] | None = None) -> int:
    """The ``waterdrop`` console script and ``python -m waterdrop``: returns the exit code."""
    try:
        cli.main(args=argv, prog_name="waterdrop", standalone_mode=True)
    except SystemExit as exit_:
        code = exit_.code
        if code is None or isinstance(code, int):
            return code or 0
        click.echo(code, err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
