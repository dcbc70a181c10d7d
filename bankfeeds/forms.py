"""Admin forms for bank feeds; the rules themselves are bankfeeds/rules.py (via the services)."""

import csv
import io

from django import forms

from bankfeeds.models import AccountType, BankFeedConnection, Platform

MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_CSV_ROWS = 50_000
CSV_COLUMNS = (
    "id",
    "date",
    "amount",
    "balance",
    "transactionType",
    "description",
    "counterparty",
    "reference",
    "reconciled",
)


class OnboardForm(forms.Form):
    company_name = forms.CharField(
        required=False, max_length=255, help_text="A new company, created at Codat first."
    )
    company_codat_id = forms.UUIDField(required=False, label="or an existing company's Codat id")
    platform = forms.ChoiceField(choices=Platform.choices)

    def clean(self):
        data = super().clean()
        if bool(data.get("company_name")) == bool(data.get("company_codat_id")):
            raise forms.ValidationError("Give either a new company's name or an existing company.")
        return data


class SourceAccountForm(forms.Form):
    connection = forms.ModelChoiceField(
        queryset=BankFeedConnection.objects.select_related("company").exclude(state="failed")
    )
    id = forms.CharField(max_length=255, label="Account id (the bank's)")
    accountName = forms.CharField(max_length=255, label="Account name")
    accountType = forms.ChoiceField(choices=AccountType.choices, label="Account type")
    accountNumber = forms.CharField(max_length=64, label="Account number")
    sortCode = forms.CharField(max_length=16, required=False, label="Sort code (GBP accounts)")
    currency = forms.CharField(max_length=3, help_text="ISO 4217, e.g. GBP")
    balance = forms.DecimalField(max_digits=18, decimal_places=2)

    def codat_fields(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("connection")
        data["balance"] = str(data["balance"])
        return data


class TransactionsCsvForm(forms.Form):
    file = forms.FileField(
        help_text=f"UTF-8 CSV with a header row; columns: {', '.join(CSV_COLUMNS)} (id, date and"
        " amount required; balance required except for QuickBooks Online)."
    )

    def clean_file(self) -> list[dict]:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_CSV_BYTES:
            raise forms.ValidationError(f"The file is over {MAX_CSV_BYTES // (1024 * 1024)} MB.")
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None
        reader = csv.DictReader(io.StringIO(text))
        unknown = sorted(set(reader.fieldnames or ()) - set(CSV_COLUMNS))
        if not reader.fieldnames or unknown:
            raise forms.ValidationError(
                f"Unknown column(s) {', '.join(unknown) or '(no header)'}; the columns are"
                f" {', '.join(CSV_COLUMNS)}."
            )
        rows = []
        for row in reader:
            if len(rows) >= MAX_CSV_ROWS:
                raise forms.ValidationError(f"At most {MAX_CSV_ROWS:,} rows per file.")
            rows.append({k: (v if v != "" else None) for k, v in row.items() if k})
        if not rows:
            raise forms.ValidationError("The file has no transactions.")
        return rows
