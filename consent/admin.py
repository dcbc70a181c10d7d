"""Consent in the admin: per-company matrix, requests and campaigns, texts, and the evidence.

The evidence (ConsentEvent) can be read by every role and changed by none. Texts are never
edited: "add" publishes a new version. Requests and campaigns are made through services; their
links are shown once, because only the token's hash is kept.
"""

import io

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.http import require_safe

from approvals.services import consent_text_publish_needs_approval, consent_text_publish_request
from companies.models import Company
from consent import selectors, services
from consent.errors import ConsentError
from consent.forms import AddProductForm, CampaignForm, ConsentTextForm, RecordForm, RequestForm
from consent.models import (
    Campaign,
    CompanyConsent,
    ConsentAction,
    ConsentChannel,
    ConsentEvent,
    ConsentRequest,
    ConsentText,
)
from core.admin_mixins import ReadOnlyMirrorAdmin, admin_object_or_404, admin_view_context
from core.csv_export import SafeCsvWriter
from core.roles import can_run_operations
from products.models import Product

SEND = "consent.send_consent_requests"
RECORD = "consent.record_consent_for_customer"


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyMirrorAdmin):
    """The append-only evidence: nobody adds, changes or deletes a row here."""

    list_display = (
        "occurred_at",
        "company",
        "product",
        "action",
        "channel",
        "actor_name",
        "data_type_list",
        "text_version",
    )
    # A date filter rather than date_hierarchy, whose years and months are read from the whole
    # log before every page.
    list_filter = ("action", "channel", "product", ("occurred_at", admin.DateFieldListFilter))
    list_select_related = ("company", "product", "text")
    search_fields = ("company__name", "=company__codat_id", "=receipt_id", "actor_name")
    fields = (
        "receipt_id",
        "occurred_at",
        "company",
        "product",
        "action",
        "data_types",
        "text",
        "text_hash",
        "channel",
        "actor_name",
        "request",
        "token_hash",
        "client",
    )

    @admin.display(description="data types")
    def data_type_list(self, event):
        return ", ".join(event.data_types)

    @admin.display(description="text", ordering="text__version")
    def text_version(self, event):
        return f"v{event.text.version} · {event.text.short_hash}"


@admin.register(ConsentText)
class ConsentTextAdmin(admin.ModelAdmin):
    """Versions are read-only; "add" publishes a new version of a product's text."""

    list_display = ("product", "version", "short_hash", "created_at", "created_by")
    list_filter = ("product",)
    list_select_related = ("product", "created_by")
    search_fields = ("product__name", "product__identifier", "=content_hash")
    readonly_fields = (
        "product",
        "version",
        "purpose",
        "retention",
        "retention_days",
        "content",
        "content_hash",
        "created_at",
        "created_by",
        "new_version_link",
    )
    fields = readonly_fields

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="edit")
    def new_version_link(self, text):
        url = reverse("admin:consent_consenttext_add") + f"?product={text.product_id}"
        return format_html('<a href="{}">Publish a new version of this text</a>', url)

    def add_view(self, request, form_url="", extra_context=None):
        """Publish a new version through the service; the form starts from the current one."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ConsentTextForm(request.POST or None, initial=self._initial(request))
        if request.method == "POST" and form.is_valid():
            product = form.cleaned_data["product"]
            if consent_text_publish_needs_approval():
                approval = consent_text_publish_request(
                    maker=request.user,
                    product=product,
                    purpose=form.cleaned_data["purpose"],
                    retention=form.cleaned_data["retention"],
                    retention_days=form.cleaned_data["retention_days"],
                )
                messages.warning(request, f"{approval.summary}: waits for a second person.")
                return redirect("admin:approvals_approvalrequest_change", approval.pk)
            before = selectors.consent_text_current(product=product)
            text = services.consent_text_publish(
                product=product,
                purpose=form.cleaned_data["purpose"],
                retention=form.cleaned_data["retention"],
                retention_days=form.cleaned_data["retention_days"],
                user=request.user,
            )
            if before is not None and text.pk == before.pk:
                messages.info(request, f"Nothing changed: {text} stays the current version.")
            else:
                self.log_addition(request, text, [{"added": {}}])
                messages.success(request, f"Published {text}.")
            return redirect("admin:consent_consenttext_change", text.pk)
        context = admin_view_context(
            request,
            self,
            title="Publish a new consent text version",
            form=form,
            intro=(
                "A version is never edited: this publishes the next one. The data types, the "
                "controller and what withdrawal does come from the catalogue and the settings."
            ),
        )
        return TemplateResponse(request, "admin/service_form.html", context)

    def _initial(self, request) -> dict:
        product = Product.objects.filter(pk=request.GET.get("product") or None).first()
        if product is None:
            return {"retention_days": settings.CONSENT_DEFAULT_RETENTION_DAYS}
        current = selectors.consent_text_current(product=product)
        return {
            "product": product,
            "purpose": current.purpose if current else product.description,
            "retention": current.retention if current else "",
            "retention_days": (
                current.retention_days if current else settings.CONSENT_DEFAULT_RETENTION_DAYS
            ),
        }


def request_status(consent_request: ConsentRequest) -> str:
    if consent_request.answered_at:
        return "answered"
    if consent_request.is_expired():
        return "expired"
    if consent_request.opened_at:
        return "opened"
    return "sent"


@admin.register(ConsentRequest)
class ConsentRequestAdmin(ReadOnlyMirrorAdmin):
    list_display = ("id", "company", "reason", "campaign", "created_at", "expires_at", "status")
    list_filter = ("reason", "campaign")
    list_select_related = ("company", "campaign")
    search_fields = ("company__name", "email")
    exclude = ("token_hash",)

    @admin.display(description="status")
    def status(self, consent_request):
        return request_status(consent_request)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "created_at",
        "sent",
        "opened",
        "granted",
        "declined",
        "expired",
    )
    list_select_related = ("created_by",)
    readonly_fields = ("name", "products", "created_at", "created_by", "counts")
    fields = readonly_fields

    def get_queryset(self, request):
        now = timezone.now()
        return (
            super()
            .get_queryset(request)
            .annotate(
                _sent=Count("requests", distinct=True),
                _opened=Count(
                    "requests", filter=Q(requests__opened_at__isnull=False), distinct=True
                ),
                _expired=Count(
                    "requests",
                    filter=Q(requests__answered_at__isnull=True, requests__expires_at__lte=now),
                    distinct=True,
                ),
                _granted=Count(
                    "requests__events__request",
                    filter=Q(requests__events__action=ConsentAction.GRANT),
                    distinct=True,
                ),
                _declined=Count(
                    "requests__events__request",
                    filter=Q(requests__events__action=ConsentAction.DECLINE),
                    distinct=True,
                ),
            )
        )

    @admin.display(description="sent", ordering="_sent")
    def sent(self, campaign):
        return campaign._sent

    @admin.display(description="opened", ordering="_opened")
    def opened(self, campaign):
        return campaign._opened

    @admin.display(description="granted (requests)", ordering="_granted")
    def granted(self, campaign):
        return campaign._granted

    @admin.display(description="declined (requests)", ordering="_declined")
    def declined(self, campaign):
        return campaign._declined

    @admin.display(description="expired unanswered", ordering="_expired")
    def expired(self, campaign):
        return campaign._expired

    @admin.display(description="counts")
    def counts(self, campaign):
        return (
            f"sent {campaign._sent}, opened {campaign._opened}, granted {campaign._granted}, "
            f"declined {campaign._declined}, expired {campaign._expired}"
        )

    def has_add_permission(self, request):
        return request.user.has_perm(SEND)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = CampaignForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            products = list(form.cleaned_data["products"])
            companies = list(form.cleaned_data["companies"])
            companies = companies or selectors.companies_lacking_consent(products=products)
            if not companies:
                messages.info(request, "Every company already has consent for these products.")
                return redirect("admin:consent_campaign_changelist")
            campaign, issued = services.consent_campaign_create(
                name=form.cleaned_data["name"],
                products=products,
                companies=companies,
                emails=form.cleaned_data["contacts"],
                user=request.user,
            )
            return campaign_links_csv(campaign, issued)
        context = admin_view_context(
            request,
            self,
            title="New consent campaign",
            form=form,
            intro=(
                "One consent link per company. Links are shown only now, in the CSV this "
                "downloads; companies with a known address also get an e-mail."
            ),
        )
        return TemplateResponse(request, "admin/service_form.html", context)


def consent_links_csv_text(issued) -> str:
    """The consent links just issued, one row per company: the only place their tokens are
    ever shown (a campaign's download, the bulk add's result page)."""
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)
    writer.writerow(["company", "codat_id", "email", "emailed", "consent_link", "expires_at"])
    for link in issued:
        consent_request = link.request
        writer.writerow(
            [
                consent_request.company.name,
                consent_request.company.codat_id,
                consent_request.email,
                "yes" if consent_request.email else "no",
                link.url,
                consent_request.expires_at.isoformat(),
            ]
        )
    return buffer.getvalue()


def campaign_links_csv(campaign, issued) -> HttpResponse:
    response = HttpResponse(consent_links_csv_text(issued), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="consent-campaign-{campaign.pk}.csv"'
    response["Cache-Control"] = "no-store"
    return response


class CoverageListFilter(admin.SimpleListFilter):
    """Companies by where their consent stands for one product
    (`?coverage=<product id>.<coverage>`): the lists behind the dashboard's consent figures
    (consent.selectors decides, in the database)."""

    title = "consent coverage"
    parameter_name = "coverage"

    def lookups(self, request, model_admin):
        return [
            (f"{product_id}.{coverage.value}", f"{name}: {coverage.label.lower()}")
            for product_id, name in Product.objects.order_by("name").values_list("pk", "name")
            for coverage in selectors.Coverage
        ]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        product_id, _, coverage = self.value().partition(".")
        product = Product.objects.filter(pk=product_id).first() if product_id.isdigit() else None
        if product is None or coverage not in selectors.Coverage.values:
            raise IncorrectLookupParameters(
                "coverage: expected <product id>.<granted|asked|withdrawn|missing>"
            )
        companies = selectors.companies_with_coverage(product=product, coverage=coverage)
        return queryset.filter(pk__in=companies.values("pk"))


@admin.register(CompanyConsent)
class CompanyConsentAdmin(ReadOnlyMirrorAdmin):
    """Per company: products x data types (required, consented, missing), and the actions."""

    list_display = ("name", "codat_id", "consent_page")
    list_filter = (CoverageListFilter,)
    search_fields = ("name", "=codat_id")

    @admin.display(description="consent")
    def consent_page(self, company):
        url = reverse("admin:consent_companyconsent_change", args=[company.pk])
        return format_html('<a href="{}">Consent matrix</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/request/", view(self.request_view), name="consent_companyconsent_request"
            ),
            path("<int:pk>/record/", view(self.record_view), name="consent_companyconsent_record"),
            path(
                "<int:pk>/add-product/",
                view(self.add_product_view),
                name="consent_companyconsent_add_product",
            ),
            *super().get_urls(),
        ]

    @method_decorator(require_safe)
    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        company = admin_object_or_404(Company.objects.all(), object_id)
        identifiers, rows = selectors.consent_matrix(
            company=company, products=Product.objects.all()
        )
        # Transposed for display: one row per data type, one column per product.
        cells_by_product = [{cell.data_type: cell for cell in row.cells} for row in rows]
        names = {cell.data_type: cell.name for row in rows for cell in row.cells}
        data_types = [
            {
                "identifier": identifier,
                "name": names[identifier],
                "cells": [cells.get(identifier) for cells in cells_by_product],
            }
            for identifier in identifiers
        ]
        context = admin_view_context(
            request,
            self,
            title=f"Consent: {company.name}",
            company=company,
            products=rows,
            data_types=data_types,
            awaiting=ConsentRequest.objects.filter(
                company=company, reason="product_added", product_add_settled_at__isnull=True
            ).prefetch_related("products"),
            events=ConsentEvent.objects.filter(company=company).select_related("product", "text")[
                :20
            ],
            can_send=request.user.has_perm(SEND),
            can_add=can_run_operations(request.user) and request.user.has_perm(SEND),
            can_record=request.user.has_perm(RECORD),
        )
        return TemplateResponse(request, "consent/admin/matrix.html", context)

    def request_view(self, request, pk):
        if not request.user.has_perm(SEND):
            raise PermissionDenied
        company = get_object_or_404(Company, pk=pk)
        # The company page's "Ask for consent" links name the product (?product=<pk>).
        asked = [value for value in request.GET.getlist("product") if value.isdigit()]
        form = RequestForm(request.POST or None, initial={"products": asked})
        if request.method == "POST" and form.is_valid():
            issued = services.consent_request_create(
                company=company,
                products=form.cleaned_data["products"],
                email=form.cleaned_data["email"],
                user=request.user,
            )
            return self._link_issued(
                request, title=f"Consent link for {company.name}", company=company, issued=issued
            )
        context = admin_view_context(
            request,
            self,
            title=f"Ask {company.name} for consent",
            form=form,
            intro="The link works once and is shown only on the next page.",
        )
        return TemplateResponse(request, "admin/service_form.html", context)

    def _link_issued(self, request, *, title: str, company, issued):
        """The one page that shows a new consent link; never cached, since it holds the token."""
        context = admin_view_context(request, self, title=title, company=company, issued=issued)
        response = TemplateResponse(request, "consent/admin/link_issued.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def add_product_view(self, request, pk):
        """Add a product; without consent the add waits for it and a consent link is issued."""
        if not (can_run_operations(request.user) and request.user.has_perm(SEND)):
            raise PermissionDenied
        company = get_object_or_404(Company, pk=pk)
        form = AddProductForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            product = form.cleaned_data["product"]
            outcome = services.product_add_or_request_consent(
                company=company,
                product=product,
                user=request.user,
                email=form.cleaned_data["email"],
            )
            if outcome.issued is None:
                messages.success(request, f"Adding {product.name}: consent covers it.")
                return redirect("admin:consent_companyconsent_change", company.pk)
            return self._link_issued(
                request,
                title=f"{product.name} awaits consent from {company.name}",
                company=company,
                issued=outcome.issued,
            )
        context = admin_view_context(
            request,
            self,
            title=f"Add a product to {company.name}",
            form=form,
            intro=(
                "If the company has not consented to every data type of the product, the add "
                "waits as awaiting consent, a consent link is issued, and the add goes ahead "
                "by itself once the customer grants."
            ),
        )
        return TemplateResponse(request, "admin/service_form.html", context)

    def record_view(self, request, pk):
        if not request.user.has_perm(RECORD):
            raise PermissionDenied
        company = get_object_or_404(Company, pk=pk)
        form = RecordForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            product = form.cleaned_data["product"]
            action = form.cleaned_data["action"]
            actor = services.Actor(channel=ConsentChannel.ADMIN, user=request.user)
            optional = [
                item.strip()
                for item in form.cleaned_data["optional_data_types"].split(",")
                if item.strip()
            ]
            text = selectors.consent_text_current(product=product)
            try:
                if action in (ConsentAction.GRANT, ConsentAction.DECLINE) and text is None:
                    raise ConsentError(f"{product.name} has no consent text: publish one first.")
                if action == ConsentAction.GRANT:
                    services.consent_grant(
                        company=company,
                        product=product,
                        text=text,
                        optional_data_types=optional,
                        actor=actor,
                    )
                elif action == ConsentAction.DECLINE:
                    services.consent_decline(
                        company=company, product=product, text=text, actor=actor
                    )
                elif action == ConsentAction.WITHDRAW:
                    services.consent_withdraw(company=company, product=product, actor=actor)
                else:
                    services.consent_reconfirm(company=company, product=product, actor=actor)
            except ConsentError as refusal:
                form.add_error(None, str(refusal))
            else:
                messages.success(request, f"Recorded for {company.name}: {product.name}.")
                return redirect("admin:consent_companyconsent_change", company.pk)
        context = admin_view_context(
            request,
            self,
            title=f"Record consent for {company.name} (acting for the customer)",
            form=form,
            intro="The evidence names you as the operator who recorded it.",
        )
        return TemplateResponse(request, "admin/service_form.html", context)
