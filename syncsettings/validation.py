"""What a sync settings list must look like before the portal sends it to Codat.

Codat's `SyncSetting`: `dataType`, `fetchOnFirstLink`, `syncSchedule` (hours, 0 for none) and
`syncOrder` are required; `syncFromUtc` (a date-time) or `syncFromWindow` (months), not both;
`monthsToSync` only for the three financial statements; `isLocked` optional.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from codat.data_types import ALL_DATA_TYPES

STATEMENT_DATA_TYPES = ("balanceSheet", "profitAndLoss", "cashFlowStatement")
_KNOWN_FIELDS = frozenset(
    {
        "dataType",
        "fetchOnFirstLink",
        "syncSchedule",
        "syncOrder",
        "syncFromUtc",
        "syncFromWindow",
        "monthsToSync",
        "isLocked",
    }
)


class SyncSettingsInvalid(ValueError):
    """A setting Codat would refuse (or that makes no sense); the message names the field."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def _int(value, field: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SyncSettingsInvalid(field, "must be a whole number")
    if value < minimum:
        raise SyncSettingsInvalid(field, f"must be {minimum} or more")
    if value > 2**31 - 1:
        raise SyncSettingsInvalid(field, "is too large")
    return value


def sync_settings_clean(settings: Sequence[dict]) -> list[dict]:
    """The settings as they go to Codat, or SyncSettingsInvalid naming the first bad field."""
    if not isinstance(settings, list | tuple):
        raise SyncSettingsInvalid("settings", "must be a list of data-type settings")
    cleaned: list[dict] = []
    seen: set[str] = set()
    for index, setting in enumerate(settings):
        where = f"settings[{index}]"
        if not isinstance(setting, dict):
            raise SyncSettingsInvalid(where, "must be an object")
        unknown = sorted(set(setting) - _KNOWN_FIELDS)
        if unknown:
            raise SyncSettingsInvalid(f"{where}.{unknown[0]}", "is not a sync setting field")
        data_type = setting.get("dataType")
        if data_type not in ALL_DATA_TYPES:
            raise SyncSettingsInvalid(f"{where}.dataType", f"{data_type!r} is not a data type")
        where = f"{data_type}"
        if data_type in seen:
            raise SyncSettingsInvalid(f"{where}.dataType", "appears twice")
        seen.add(data_type)
        if not isinstance(setting.get("fetchOnFirstLink"), bool):
            raise SyncSettingsInvalid(f"{where}.fetchOnFirstLink", "must be true or false")
        out = {
            "dataType": data_type,
            "fetchOnFirstLink": setting["fetchOnFirstLink"],
            # Hours between reads; 0 is no schedule, 1 (hourly) is allowed.
            "syncSchedule": _int(setting.get("syncSchedule"), f"{where}.syncSchedule"),
            "syncOrder": _int(setting.get("syncOrder"), f"{where}.syncOrder"),
        }
        sync_from = setting.get("syncFromUtc")
        window = setting.get("syncFromWindow")
        if sync_from not in (None, "") and window is not None:
            raise SyncSettingsInvalid(
                f"{where}.syncFromUtc", "give a sync-from date or a window, not both"
            )
        if sync_from not in (None, ""):
            if not isinstance(sync_from, str):
                raise SyncSettingsInvalid(f"{where}.syncFromUtc", "must be a date-time")
            try:
                datetime.fromisoformat(sync_from.replace("Z", "+00:00"))
            except ValueError:
                raise SyncSettingsInvalid(
                    f"{where}.syncFromUtc", "must be a date-time such as 2024-01-01T00:00:00Z"
                ) from None
            out["syncFromUtc"] = sync_from
        if window is not None:
            out["syncFromWindow"] = _int(window, f"{where}.syncFromWindow", minimum=1)
        months = setting.get("monthsToSync")
        if months is not None:
            if data_type not in STATEMENT_DATA_TYPES:
                raise SyncSettingsInvalid(
                    f"{where}.monthsToSync",
                    "only applies to balanceSheet, profitAndLoss and cashFlowStatement",
                )
            out["monthsToSync"] = _int(months, f"{where}.monthsToSync", minimum=1)
        if "isLocked" in setting:
            if not isinstance(setting["isLocked"], bool):
                raise SyncSettingsInvalid(f"{where}.isLocked", "must be true or false")
            out["isLocked"] = setting["isLocked"]
        cleaned.append(out)
    return cleaned


def scheduled_hours(settings: Sequence[dict]) -> dict[str, int]:
    """Data type -> hours between reads, for the types a client-level schedule reads."""
    hours: dict[str, int] = {}
    for setting in settings or ():
        schedule = setting.get("syncSchedule") or 0
        if isinstance(schedule, int) and schedule > 0 and setting.get("dataType"):
            hours[setting["dataType"]] = schedule
    return hours


def schedule_in_words(hours: int) -> str:
    """`syncSchedule` for people: "none", "hourly", "daily", "every 12 hours"."""
    if not hours:
        return "none"
    if hours == 1:
        return "hourly"
    if hours == 24:
        return "daily"
    if hours % 24 == 0:
        return f"every {hours // 24} days"
    return f"every {hours} hours"
