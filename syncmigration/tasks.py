"""Thin tasks: they take a run's id and call syncmigration.services. Safe to run twice: the
engine works under a lock on the run's row and finds the rows a step already wrote."""

import logging

from celery import shared_task

from operations.tasks import QUEUE, TASK_OPTIONS

logger = logging.getLogger(__name__)

__all__ = ["QUEUE", "migration_run_advance_task", "migration_runs_redrive_task"]


@shared_task(name="syncmigration.tasks.advance", **TASK_OPTIONS)
def migration_run_advance_task(run_id: int) -> str:
    from syncmigration.services import migration_run_advance

    state = migration_run_advance(run_id=run_id)
    logger.debug("syncmigration.advance", extra={"run": run_id, "state": state})
    return state


@shared_task(name="syncmigration.tasks.redrive", **TASK_OPTIONS)
def migration_runs_redrive_task() -> int:
    from syncmigration.services import migration_runs_redrive

    return migration_runs_redrive()
