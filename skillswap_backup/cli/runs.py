"""Launch a job through the project's Dagster instance (so the run shows in the UI) and turn a
failed run into one line naming the failed steps and their causes.

A CLI run executes inside the CLI's own process. When that process is killed (SIGKILL, a closed
terminal, an OOM kill), nothing is left to record the end of the run, and the UI would show it
as running forever: every launch first marks such orphans failed, found by the host and pid
tags each CLI run carries.

Two runs of one partition at a time would write one snapshot folder together (the later one's
manifest would refuse tables read in the other's snapshot, or list files the other replaced):
the CLI refuses to start while one is in progress, and the instance's queue (dagster.yaml)
holds a second one back for the UI, schedules and sensors.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import dagster as dg

from .errors import CommandFailed


def _root_message(error) -> str:
    while error.cause is not None:
        error = error.cause
    text = error.message.strip().splitlines()[-1] if error.message.strip() else error.cls_name
    # "pkg.module.SchemaDrift: the message" -> "the message"
    head, _, rest = text.partition(": ")
    return rest if rest and "." in head and " " not in head else text


def failures(result: dg.ExecuteJobResult) -> list[str]:
    found = []
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            # A dg.Failure from `retries.fail_fast` already says it in one line, naming the table.
            described = data.user_failure_data.description if data.user_failure_data else None
            found.append(f"{event.step_key}: {described or _root_message(data.error)}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                found.append(f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} failed")
    return found


HOST_TAG = "skillswap/cli_host"
PID_TAG = "skillswap/cli_pid"


def _alive(pid: int) -> bool:
    """Whether `pid` is still a skillswap-backup process (pids are reused)."""
    try:
        return b"skillswap" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def fail_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the runs of CLI processes on this host that died without ending them."""
    active = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
    found = instance.get_runs(filters=dg.RunsFilter(statuses=active, tags={HOST_TAG: socket.gethostname()}))
    reaped = []
    for run in found:
        pid = run.tags.get(PID_TAG, "")
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            instance.report_run_failed(run, message=f"the skillswap-backup process {pid} running it ended without finishing it (killed?)")
            reaped.append(run.run_id)
    return reaped


_IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
]


def refuse_if_partition_busy(instance: dg.DagsterInstance, partition_key: str) -> None:
    """One line, and no run, when another run of `partition_key` has not ended."""
    busy = instance.get_runs(filters=dg.RunsFilter(statuses=_IN_PROGRESS, tags={"dagster/partition": partition_key}), limit=1)
    if busy:
        run = busy[0]
        raise CommandFailed(
            f"run {run.run_id} ({run.job_name}) of snapshot {partition_key} is still {run.status.value.lower()}; "
            "wait for it to end, or terminate it in the Dagster UI, then run this again"
        )


def launch(job_name: str, *, instance: dg.DagsterInstance, tags: dict[str, str], run_config: dict | None = None, what: str) -> dg.ExecuteJobResult:
    for run_id in fail_orphaned_runs(instance):
        print(f"marked run {run_id} failed: the skillswap-backup process running it was killed")
    if "dagster/partition" in tags:
        refuse_if_partition_busy(instance, tags["dagster/partition"])
    config = {"loggers": {"cli": {"config": {"log_level": "INFO"}}}, **(run_config or {})}
    result = dg.execute_job(
        dg.build_reconstructable_job("skillswap_backup.definitions", "job", reconstructable_args=(job_name,)),
        instance=instance, tags={**tags, HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())},
        run_config=config, raise_on_error=False,
    )
    problems = failures(result)
    if not result.success or problems:
        raise CommandFailed(f"{what} failed (run {result.run_id}): " + "; ".join(problems or ["see the run in the Dagster UI"]))
    return result
