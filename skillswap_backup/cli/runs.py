"""Launch a job through the project's Dagster instance (so the run shows in the UI) and turn a
failed run into one line naming the failed steps and their causes."""

from __future__ import annotations

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
            found.append(f"{event.step_key}: {_root_message(event.step_failure_data.error)}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                found.append(f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} failed")
    return found


def launch(job_name: str, *, instance: dg.DagsterInstance, tags: dict[str, str], run_config: dict | None = None, what: str) -> dg.ExecuteJobResult:
    config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}, **(run_config or {})}
    result = dg.execute_job(
        dg.build_reconstructable_job("skillswap_backup.definitions", "job", reconstructable_args=(job_name,)),
        instance=instance, tags=tags, run_config=config, raise_on_error=False
    )
    problems = failures(result)
    if not result.success or problems:
        raise CommandFailed(f"{what} failed (run {result.run_id}): " + "; ".join(problems or ["see the run in the Dagster UI"]))
    return result
