"""Thin Celery tasks for bank feeds: they take ids and call bankfeeds.services.

The pusher is safe to run twice for the same account: it locks the account's row and sends
nothing while a push of the account is in flight.
"""

from celery import shared_task

TASK_OPTIONS = {"acks_late": True, "ignore_result": True}


@shared_task(name="bankfeeds.tasks.account_push", **TASK_OPTIONS)
def account_push_task(account_id: int) -> int | None:
    from bankfeeds.services import account_push_next

    push = account_push_next(account_id=account_id)
    return push.pk if push else None


@shared_task(name="bankfeeds.tasks.pushes_round", **TASK_OPTIONS)
def pushes_round_task() -> dict:
    from bankfeeds.services import pushes_round

    return pushes_round()
