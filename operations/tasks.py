"""Thin Celery tasks: they take ids and call operations.services. Redis only carries ids.

Every task here is safe to run twice: a row is claimed with a conditional UPDATE, and the
sweeper and reconciler only re-send or re-read.
"""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)

# Every send names this queue explicitly (Celery 5.7 deprecates the task-level `queue`
# attribute): the one `make run`'s worker and the test workers consume.
QUEUE = "portal"
TASK_OPTIONS = {"acks_late": True, "ignore_result": True}


@shared_task(name="operations.tasks.run_operation", **TASK_OPTIONS)
def run_operation_task(operation_id: int) -> str:
    from operations.worker import operation_run

    outcome = operation_run(operation_id=operation_id)
    logger.debug("operations.run", extra={"operation": operation_id, "outcome": outcome})
    return outcome


@shared_task(name="operations.tasks.sweep", **TASK_OPTIONS)
def sweep_task() -> dict:
    from operations.sweeper import operations_sweep

    return operations_sweep()
