from django import forms

from products.models import Product
from syncmigration.models import ScopeKind


def _ids(text: str, field: str) -> list[int]:
    ids = []
    for part in text.replace(",", " ").split():
        if not part.isdigit():
            raise forms.ValidationError(f"{part!r} is not a company id (a whole number).")
        ids.append(int(part))
    return ids


class MigrationRunForm(forms.Form):
    scope_kind = forms.ChoiceField(label="Companies", choices=ScopeKind.choices)
    company_ids = forms.CharField(
        label="Company ids",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="For named companies: the portal's company ids, separated by spaces or commas.",
    )
    tag = forms.CharField(
        required=False,
        help_text="For a filter: companies with this tag, as key=value (e.g. segment=lending).",
    )
    name_contains = forms.CharField(
        required=False, help_text="For a filter: companies whose name contains this."
    )
    products = forms.ModelMultipleChoiceField(
        queryset=Product.objects.order_by("name"),
        help_text="The products the companies move to (their product-level settings).",
    )
    canary_company_ids = forms.CharField(
        label="Canary companies",
        required=False,
        help_text="The cohort step 5 runs for first: company ids, or leave empty and give a "
        "percentage.",
    )
    canary_percent = forms.IntegerField(
        label="Canary percentage", required=False, min_value=1, max_value=100
    )
    receiver_url = forms.URLField(
        label="Portal's webhook address",
        max_length=500,
        help_text="Where the new consumer (step 4) sends events.",
    )

    def clean_company_ids(self):
        return _ids(self.cleaned_data["company_ids"], "company_ids")

    def clean_canary_company_ids(self):
        return _ids(self.cleaned_data["canary_company_ids"], "canary_company_ids")

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        scope_filter = {}
        if data["scope_kind"] == ScopeKind.FILTER:
            if data["tag"]:
                scope_filter["tag"] = data["tag"]
            elif data["name_contains"]:
                scope_filter["name_contains"] = data["name_contains"]
        return {
            "scope_kind": data["scope_kind"],
            "company_ids": data["company_ids"],
            "scope_filter": scope_filter,
            "products": list(data["products"]),
            "canary_company_ids": data["canary_company_ids"],
            "canary_percent": data["canary_percent"],
            "receiver_url": data["receiver_url"],
        }
