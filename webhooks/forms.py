"""Forms of the webhooks admin."""

from django import forms

from webhooks.consumers import event_type_choices


class WebhookConsumerForm(forms.Form):
    """What a new consumer at Codat listens to; webhook_consumer_register makes it."""

    url = forms.URLField(
        max_length=500,
        label="URL",
        assume_scheme="https",
        widget=forms.URLInput(attrs={"size": 60}),
        help_text="Where Codat delivers: the portal's own endpoint unless you relay elsewhere.",
    )
    event_types = forms.MultipleChoiceField(
        choices=(), widget=forms.CheckboxSelectMultiple, help_text="Events Codat should send."
    )
    disabled = forms.BooleanField(required=False, help_text="Registered, but sent nothing.")
    company_tags = forms.CharField(
        required=False,
        help_text="Optional, comma-separated key:value tags; any one match delivers.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event_types"].choices = event_type_choices()

    def clean_company_tags(self):
        tags = [tag.strip() for tag in self.cleaned_data["company_tags"].split(",") if tag.strip()]
        if len(tags) > 10:
            raise forms.ValidationError("Codat allows at most 10 company tags.")
        for tag in tags:
            if ":" not in tag or len(tag) > 128:
                raise forms.ValidationError(f"{tag!r} is not a key:value tag of 128 characters.")
        return tags
