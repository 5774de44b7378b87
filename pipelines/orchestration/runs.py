"""Running the job in-process, for the `okr` command: one Dagster run for a window of days.

The run goes to the persistent instance in `Settings.dagster_home_path` (DAGSTER_HOME,
else `.okr/dagster`), so it shows in `dagster dev`. The instance is built from that
folder's dagster.yaml with its `env: DAGSTER_HOME` references filled in from the
settings: the process environment is never written, but for the default of Dagster's
DAGSTER_EVENT_BATCH_SIZE, which the storage sets when it loads (storage.py).

A run executes inside the `okr` process, so a process that is killed (SIGKILL, the
machine going down) leaves its run STARTED for ever: Dagster's run monitoring only
watches runs its launcher started. Each run is tagged with the process that executes it
(`okr/process`), and the next run on the same machine first marks every run whose process
is gone as failed, saying so (`fail_interrupted_runs`).

With `Settings.executor == "multiprocess"` the run goes through `execute_job`: each step
is a child process that rebuilds the job (`multiprocess_job`) from the environment it
inherits, with only the definitions path and, for `okr demo`, the sandbox's URL passed
along; both are recorded in the run's origin, so no credential is.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from dagster import DagsterInstance, DagsterRunStatus, JobDefinition, RunsFilter, execute_job
from dagster._core.definitions.reconstruct import build_reconstructable_job
from dagster._core.instance.ref import InstanceRef

from okr_metrics.pipelines.orchestration.definitions import JOB_NAME, build_definitions
from okr_metrics.pipelines.orchestration.resources import (
    SANDBOX_TOKEN,
    SANDBOX_USER,
    SourceResource,
    sandbox_resources,
)
from okr_metrics.pipelines.orchestration.schedules import partition_range_tags
from okr_metrics.pipelines.settings import DAGSTER_HOME_VARIABLE, Settings

INSTANCE_FILE = "dagster.yaml"
# The run's executing process: "host:pid:start", start being the process's start time
# (Linux; empty elsewhere) so that a reused pid is not taken for the process.
PROCESS_TAG = "okr/process"
UNFINISHED_STATUSES = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]

logger = logging.getLogger("okr_metrics.run")
_PROC = Path("/proc/self")


@dataclass(frozen=True)
class WindowRun:
    """How a run ended: its id, whether it succeeded, and the first line of each step failure."""

    run_id: str
    success: bool
    failure: str | None = None


def _with_home(value: Any, home: str) -> Any:
    """`value` (loaded YAML) with every `{env: DAGSTER_HOME}` replaced by `home`."""
    if isinstance(value, dict):
        if value == {"env": DAGSTER_HOME_VARIABLE}:
            return home
        return {key: _with_home(item, home) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_home(item, home) for item in value]
    return value


def _copy_atomically(source: str, target: Path) -> None:
    """Copy `source` over `target` unless they match; a reader never sees a half-written file."""
    text = Path(source).read_bytes()
    if target.is_file() and target.read_bytes() == text:
        return
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def dagster_instance(settings: Settings) -> DagsterInstance:
    """The persistent Dagster instance in `settings.dagster_home_path`.

    The folder is created when missing and gets a copy of ./dagster.yaml when it has
    none (`.okr/dagster`, which the project owns when DAGSTER_HOME is not set, always
    gets the current one).
    """
    home = settings.dagster_home_path
    home.mkdir(parents=True, exist_ok=True)
    config = home / INSTANCE_FILE
    own_home = settings.dagster_home is None
    if Path(INSTANCE_FILE).is_file() and (own_home or not config.exists()):
        _copy_atomically(INSTANCE_FILE, config)
    loaded = yaml.safe_load(config.read_text(encoding="utf-8")) if config.is_file() else None
    overrides = _with_home(loaded or {}, str(home))
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=overrides))


def _start_time(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot, Linux), "" where unknown,
    None when there is no such process or it is a zombie."""
    if not _PROC.is_dir():
        return ""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    if fields[0] == "Z":
        return None
    return fields[19]


def process_tag(pid: int | None = None) -> str:
    """The `okr/process` tag value for process `pid` (default: this one)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or ''}"


def _process_gone(tag: str) -> bool:
    """Whether the process a `process_tag` names has ended (only known on this host)."""
    parts = tag.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    host, pid, started = parts[0], int(parts[1]), parts[2]
    if host != socket.gethostname():
        return False
    now = _start_time(pid)
    if now is None:
        return True
    if now and started:
        return now != started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process
        return False
    return False


def fail_interrupted_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed every unfinished run whose `okr` process on this host has ended.

    Returns their run ids; the pool slots their steps held are freed. Runs without the
    tag (started by `dagster dev` or the daemon) and runs of live processes are left alone.
    """
    interrupted = []
    records = instance.get_run_records(filters=RunsFilter(statuses=UNFINISHED_STATUSES))
    for record in records:
        run = record.dagster_run
        tag = run.tags.get(PROCESS_TAG)
        if not tag or not _process_gone(tag):
            continue
        pid = tag.rsplit(":", 2)[1]
        message = (
            f"the okr process (pid {pid}) running this run ended before the run did "
            "(killed, or the machine stopped); marked failed by the next okr run"
        )
        instance.report_run_failed(run, message)
        storage = instance.event_log_storage
        if storage.supports_global_concurrency_limits:
            # A killed multiprocess run's steps held their pools' slots; with no daemon
            # watching (okr on a laptop), nothing else gives them back.
            storage.free_concurrency_slots_for_run(run.run_id)
        logger.warning(
            f"run {run.run_id} did not finish: its process (pid {pid}) was gone; marked failed"
        )
        interrupted.append(run.run_id)
    return interrupted


def multiprocess_job(definitions_path: str, sandbox_url: str | None = None) -> JobDefinition:
    """The job as each step's process rebuilds it: the settings from its environment,
    the definitions at `definitions_path`, every source on the sandbox at `sandbox_url`."""
    settings = Settings.from_env().with_definitions(definitions_path)
    resources = sandbox_resources(settings, sandbox_url) if sandbox_url else None
    return build_definitions(settings, resources).resolve_job_def(JOB_NAME)


def _sandbox_url(resources: Mapping[str, Any] | None) -> str | None:
    """The sandbox URL that `sandbox_resources` aimed `resources` at (None without any).

    A multiprocess run's steps rebuild their resources in other processes, so only the
    sandbox's (placeholder credentials, one URL) can be handed over; others are refused.
    """
    urls = set()
    for key, resource in (resources or {}).items():
        placeholder = isinstance(resource, SourceResource) and (
            resource.token in (None, SANDBOX_TOKEN) and resource.user in (None, SANDBOX_USER)
        )
        if not placeholder:
            raise ValueError(
                f"a multiprocess run reads its resources from the environment; {key} "
                "cannot be passed to its steps (use OKR_EXECUTOR=in_process)"
            )
        if resource.base_url:  # the check-ins have no URL
            urls.add(resource.base_url)
    if len(urls) > 1:
        raise ValueError("a multiprocess run takes one sandbox URL for every source")
    return urls.pop() if urls else None


def materialize_window(
    settings: Settings,
    start: date,
    end: date,
    resources: Mapping[str, Any] | None = None,
    deliver_alerts: bool = False,
    asset_selection: list[Any] | None = None,
) -> WindowRun:
    """Materialize every asset (or those of `asset_selection`, asset keys) for the days
    start..end in one Dagster run (posting its alerts with `deliver_alerts`, as the
    nightly schedule does), with the executor `settings.executor` names."""
    tags = {**partition_range_tags(start, end, deliver_alerts), PROCESS_TAG: process_tag()}
    run_config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    if settings.executor == "multiprocess":
        job = build_reconstructable_job(
            __name__,
            multiprocess_job.__name__,
            reconstructable_kwargs={
                "definitions_path": settings.definitions_path,
                "sandbox_url": _sandbox_url(resources),
            },
        )
        with dagster_instance(settings) as instance:
            fail_interrupted_runs(instance)
            with execute_job(
                job,
                instance=instance,
                tags=tags,
                run_config=run_config,
                raise_on_error=False,
                asset_selection=asset_selection,
            ) as result:
                events = result.all_events
                run_id, success = result.run_id, result.success
    else:
        definitions = build_definitions(settings, resources)
        job_def = definitions.resolve_job_def(JOB_NAME)
        if asset_selection is not None:
            job_def = job_def.get_subset(asset_selection=set(asset_selection))
        with dagster_instance(settings) as instance:
            fail_interrupted_runs(instance)
            in_process = job_def.execute_in_process(
                instance=instance, tags=tags, raise_on_error=False, run_config=run_config
            )
        events, run_id, success = in_process.all_events, in_process.run_id, in_process.success
    failure = None
    if not success:
        failures = [
            event.step_failure_data.error.message.strip().splitlines()[0]
            for event in events
            if event.is_step_failure and event.step_failure_data.error
        ]
        failure = "; ".join(failures) or "the run failed"
    return WindowRun(run_id, success, failure)
