"""The forms of the consent admin pages: texts, campaigns, requests, adds and records."""

from django import forms

from companies.models import Company
from consent.models import ConsentAction
from products.models import Product


class ConsentTextForm(forms.Form):
    """A new version of a product's text: the two parts staff write; the rest comes from the
    catalogue and the settings when the version is published."""

    product = forms.ModelChoiceField(queryset=Product.objects.all())
    purpose = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}))
    retention = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    retention_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=36500,
        label="Retention in days",
        help_text="How long the consent evidence is kept after the company is erased: the "
        "retention above, as a number (2190 is six years). Empty: the current version's.",
    )


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    products = forms.ModelMultipleChoiceField(queryset=Product.objects.all())
    companies = forms.ModelMultipleChoiceField(
        queryset=Company.objects.all(),
        required=False,
        help_text="Leave empty to ask every company that lacks consent for these products.",
    )
    contacts = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Optional e-mail addresses, one per line: Codat company id, address.",
    )

    def clean_contacts(self):
        emails = {}
        validator = forms.EmailField()
        for number, line in enumerate(self.cleaned_data["contacts"].splitlines(), start=1):
            if not line.strip():
                continue
            codat_id, _, address = (part.strip() for part in line.partition(","))
            company = Company.objects.filter(codat_id=codat_id).first() if codat_id else None
            if company is None:
                raise forms.ValidationError(f"Line {number}: unknown Codat company id.")
            try:
                emails[company.pk] = validator.clean(address)
            except forms.ValidationError as error:
                raise forms.ValidationError(f"Line {number}: {error.messages[0]}") from error
        return emails


class RequestForm(forms.Form):
    products = forms.ModelMultipleChoiceField(queryset=Product.objects.all())
    email = forms.EmailField(required=False, help_text="Optional: the link is e-mailed to it.")


class AddProductForm(forms.Form):
    product = forms.ModelChoiceField(queryset=Product.objects.all())
    email = forms.EmailField(
        required=False, help_text="Optional: where to e-mail the consent link if one is needed."
    )


class RecordForm(forms.Form):
    product = forms.ModelChoiceField(queryset=Product.objects.all())
    action = forms.ChoiceField(
        choices=(
            (ConsentAction.GRANT, "The customer grants"),
            (ConsentAction.DECLINE, "The customer declines"),
            (ConsentAction.WITHDRAW, "The customer withdraws"),
            (ConsentAction.RECONFIRM, "The customer reconfirms"),
        )
    )
    optional_data_types = forms.CharField(
        required=False, help_text="Optional data types granted, comma-separated identifiers."
    )
    confirm = forms.BooleanField(
        label="The customer told me this themselves and saw the current consent text.",
    )
