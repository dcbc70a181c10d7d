from django.utils import timezone

from operations.models import Operation, OperationState
from operations.worker import operation_run


def run(operation: Operation) -> str:
    """One worker attempt of the row, as the worker makes it (HTTP to the sandbox)."""
    Operation.objects.filter(pk=operation.pk, state=OperationState.PENDING).update(
        next_attempt_at=timezone.now()
    )
    outcome = operation_run(operation_id=operation.pk)
    operation.refresh_from_db()
    return outcome


def settings_of(sandbox, path: str = "/profile/syncSettings") -> dict:
    return sandbox.request("GET", path).json()


def with_schedule(settings: list[dict], hours_by_type: dict[str, int]) -> list[dict]:
    return [
        {**setting, "syncSchedule": hours_by_type.get(setting["dataType"], setting["syncSchedule"])}
        for setting in settings
    ]
