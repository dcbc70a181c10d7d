"""The edit form of the client's sync settings: one row per data type, each field validated
with its reason, then checked once more by the service (syncsettings/validation.py)."""

from datetime import UTC

from django import forms

from syncsettings.validation import STATEMENT_DATA_TYPES


class SyncSettingForm(forms.Form):
    data_type = forms.CharField(widget=forms.HiddenInput)
    fetch_on_first_link = forms.BooleanField(required=False, label="Fetch on first link")
    sync_schedule = forms.IntegerField(
        min_value=0,
        max_value=24 * 365,
        label="Schedule (hours)",
        help_text="0: no schedule; 1: hourly; 24: daily.",
        widget=forms.NumberInput(attrs={"style": "width: 5em"}),
    )
    sync_order = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    sync_from_utc = forms.DateTimeField(
        required=False,
        label="Sync from (UTC)",
        widget=forms.DateTimeInput(attrs={"placeholder": "2024-01-01 00:00", "size": 16}),
    )
    sync_from_window = forms.IntegerField(
        required=False,
        min_value=1,
        label="Or the last N months",
        widget=forms.NumberInput(attrs={"style": "width: 4em"}),
    )
    months_to_sync = forms.IntegerField(
        required=False,
        min_value=1,
        label="Months to sync",
        widget=forms.NumberInput(attrs={"style": "width: 4em"}),
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("sync_from_utc") and cleaned.get("sync_from_window"):
            self.add_error("sync_from_window", "Give a sync-from date or a window, not both.")
        if (
            cleaned.get("months_to_sync") is not None
            and cleaned.get("data_type") not in STATEMENT_DATA_TYPES
        ):
            self.add_error(
                "months_to_sync",
                "Only the balance sheet, profit and loss and cash flow statement have it.",
            )
        return cleaned

    @classmethod
    def initial_of(cls, setting: dict) -> dict:
        sync_from = setting.get("syncFromUtc") or None
        return {
            "data_type": setting["dataType"],
            "fetch_on_first_link": bool(setting.get("fetchOnFirstLink")),
            "sync_schedule": setting.get("syncSchedule") or 0,
            "sync_order": setting.get("syncOrder", 0),
            "sync_from_utc": sync_from.replace("Z", "").replace("T", " ")[:16]
            if sync_from
            else None,
            "sync_from_window": setting.get("syncFromWindow"),
            "months_to_sync": setting.get("monthsToSync"),
        }

    def setting(self, original: dict) -> dict:
        """The Codat `SyncSetting` this row stands for; fields the form does not show (isLocked)
        are kept as Codat had them."""
        cleaned = self.cleaned_data
        setting = {
            key: value
            for key, value in original.items()
            if key not in ("syncFromUtc", "syncFromWindow", "monthsToSync")
        }
        setting.update(
            dataType=cleaned["data_type"],
            fetchOnFirstLink=cleaned["fetch_on_first_link"],
            syncSchedule=cleaned["sync_schedule"],
            syncOrder=cleaned["sync_order"],
        )
        if cleaned.get("sync_from_utc"):
            at = cleaned["sync_from_utc"].astimezone(UTC)
            setting["syncFromUtc"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if cleaned.get("sync_from_window"):
            setting["syncFromWindow"] = cleaned["sync_from_window"]
        if cleaned.get("months_to_sync") is not None:
            setting["monthsToSync"] = cleaned["months_to_sync"]
        return setting


SyncSettingFormSet = forms.formset_factory(SyncSettingForm, extra=0, can_delete=False)


class OverridesDefaultsForm(forms.Form):
    overrides_defaults = forms.BooleanField(
        required=False,
        label="These settings override Codat's defaults",
    )
