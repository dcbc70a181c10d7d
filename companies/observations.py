"""The ordering rule for rows fed by Codat's facts: an older fact never overwrites a newer one.

Facts arrive in no guaranteed order: events are retried and applied by drains side by side, and
an import may read Codat just before an event about the same row is generated. A row fed by them
keeps the time of the newest fact applied to it; these two functions are how a writer locks the
row and compares. The mirror's services (`companies.services._observe`) and the webhooks app's
own event-fed rows (write outcomes, bank-feed source accounts) both use them.
"""

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from django.db import IntegrityError, models, transaction

Row = TypeVar("Row", bound=models.Model)


def locked_or_created(
    model: type[Row], lookup: dict, create: Callable[[], Row], *, lock: bool = True
) -> tuple[Row, bool]:
    """The row matching `lookup`, locked for this transaction, or a new one; and whether it is new.

    Two facts about a row that does not exist yet may race to create it: `create` must be a
    plain INSERT, so the loser waits on the unique index, gets IntegrityError, and then locks
    the winner's row; the comparison that follows always sees the other fact's result
    (update_or_create would overwrite the winner's state, however new).
    """
    rows = model.objects.select_for_update() if lock else model.objects
    row = rows.filter(**lookup).first()
    if row is not None:
        return row, False
    try:
        with transaction.atomic():
            return create(), True
    except IntegrityError:
        return rows.get(**lookup), False


def is_older(observed_at: datetime, newest_applied: datetime | None) -> bool:
    """Whether a fact observed at `observed_at` is older than the newest one applied to a row.

    Equal times apply: Codat's own examples give every step of a connection's life the same
    generatedDate.
    """
    return newest_applied is not None and observed_at < newest_applied
