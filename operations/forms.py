"""Forms of the operations admin: what to do to the companies an operator selected."""

from django import forms

from codat.data_types import ALL_DATA_TYPES
from operations.kinds import COMPANY_KINDS, SPECS, DataTypes, spec_for
from operations.models import OperationKind
from products.models import Product
from syncsettings.guard import DUAL_SYNC_OVERRIDE

REFRESH_CHOICES = (
    (OperationKind.REFRESH_PRODUCT, "Refresh a custom product's data"),
    (OperationKind.REFRESH_ALL_DATA, "Refresh all data (client-level sync settings)"),
    (OperationKind.REFRESH_DATA_TYPE, "Refresh one data type (client-level sync settings)"),
)


class OperationRequestForm(forms.Form):
    """What to do to the selected companies; `kind` is fixed by the action chosen."""

    kind = forms.ChoiceField(
        choices=[(kind, SPECS[kind].kind.label) for kind in COMPANY_KINDS],
        widget=forms.HiddenInput,
    )
    # The selection: the ids of rows ticked on one page of the list, or, when "select all" was
    # chosen, the list's own query (its filters and search), never the ids of 100,000 rows.
    company_ids = forms.CharField(widget=forms.HiddenInput, required=False)
    select_across = forms.BooleanField(widget=forms.HiddenInput, required=False)
    list_query = forms.CharField(widget=forms.HiddenInput, required=False, max_length=2000)
    product = forms.ModelChoiceField(queryset=Product.objects.all(), required=False)
    data_type = forms.ChoiceField(
        choices=[("", "---------")] + [(t, t) for t in ALL_DATA_TYPES], required=False
    )

    # An admin adding a custom product despite a dual-sync risk says why (syncsettings/guard.py);
    # the reason is kept on each row and in the audit trail.
    override_dual_sync = forms.BooleanField(
        required=False, label="Add it anyway to the companies at dual-sync risk"
    )
    dual_sync_override_reason = forms.CharField(
        required=False,
        max_length=500,
        label="Why (kept with each operation and in the audit trail)",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
    )

    def clean_company_ids(self) -> list[int]:
        raw = self.cleaned_data["company_ids"]
        try:
            return sorted({int(part) for part in raw.split(",") if part.strip()})
        except ValueError:
            raise forms.ValidationError("The selection is not readable; select again.") from None

    def clean(self):
        cleaned = super().clean()
        nothing_selected = not cleaned.get("select_across") and not cleaned.get("company_ids")
        if nothing_selected and "company_ids" not in self.errors:
            self.add_error("company_ids", "Select at least one company.")
        kind = cleaned.get("kind")
        if kind is None:
            return cleaned
        spec = spec_for(kind)
        if spec.needs_product and not cleaned.get("product"):
            self.add_error("product", "Choose a product.")
        if spec.data_types is DataTypes.EXACTLY_ONE and not cleaned.get("data_type"):
            self.add_error("data_type", "Choose a data type.")
        if (
            cleaned.get("override_dual_sync")
            and not cleaned.get("dual_sync_override_reason", "").strip()
        ):
            self.add_error(
                "dual_sync_override_reason",
                "Write why the companies at dual-sync risk get the product anyway.",
            )
        return cleaned

    @property
    def overrides_dual_sync(self) -> bool:
        return bool(self.is_valid() and self.cleaned_data.get("override_dual_sync"))

    def service_arguments(self, companies) -> dict:
        """The arguments of the operations services, for the queryset of the companies the
        selection names (the admin resolves it: the list's query needs the list)."""
        spec = spec_for(self.cleaned_data["kind"])
        data_type = self.cleaned_data.get("data_type")
        one_type = spec.data_types is DataTypes.EXACTLY_ONE
        arguments = {
            "kind": spec.kind,
            "companies": companies,
            "product": self.cleaned_data.get("product") if spec.needs_product else None,
            "data_types": [data_type] if one_type and data_type else [],
        }
        if self.cleaned_data.get("override_dual_sync"):
            arguments["parameters"] = {
                DUAL_SYNC_OVERRIDE: self.cleaned_data["dual_sync_override_reason"].strip()
            }
        return arguments
