"""Admin for operations: company-list actions with a confirmation page, the job page (live
progress, counts by state, failures, retry failed, cancel the rest), the operation list and the
list of stale reads. (The company page's timeline is companies.selectors.company_timeline.)

Every action and every view that changes something is gated on `companies.run_operations`
(core.roles.can_run_operations); viewers see pages but no buttons.
"""

from __future__ import annotations

import base64
import copy
import io

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
    QueryDict,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST, require_safe

from approvals.services import operations_need_approval, operations_start_or_request_approval
from companies.models import Company
from consent.admin import consent_links_csv_text
from consent.services import product_add_consent_requests_create
from core.admin_mixins import (
    ADMIN_LAYOUT_CSS,
    ReadOnlyMirrorAdmin,
    admin_object_or_404,
    admin_view_context,
    count_of_rows,
    shortened,
)
from core.csv_export import SafeCsvWriter
from core.roles import can_override_dual_sync, can_run_operations
from operations import limiter, planning, selectors, services
from operations.forms import REFRESH_CHOICES, OperationRequestForm
from operations.kinds import COMPANY_KINDS, SPECS
from operations.models import FINISHED_STATES, Job, Operation, OperationKind, OperationState
from products.models import Product, ProductKind
from syncsettings.selectors import DUAL_SYNC_REASON_START

# -- actions on the company list --------------------------------------------------------------


def _estimate_seconds(count: int) -> float:
    """How long `count` calls take at the fleet's sustained rate."""
    return 60 * count / limiter.calls_per_minute()


def _estimate_text(count: int) -> str:
    """`_estimate_seconds` in words ("under a second", "about 3 minutes"); empty for no calls."""
    if not count:
        return ""
    seconds = _estimate_seconds(count)
    if seconds < 1:
        return "under a second"
    for unit_seconds, singular, plural in (
        (3600, "about %(n)d hour", "about %(n)d hours"),
        (60, "about %(n)d minute", "about %(n)d minutes"),
    ):
        # Switch to the larger unit from 1.5 of it, so 80 seconds is not "about 1 minute".
        if seconds >= 1.5 * unit_seconds:
            n = round(seconds / unit_seconds)
            return ngettext(singular, plural, n) % {"n": n}
    n = round(seconds)
    return ngettext("about %(n)d second", "about %(n)d seconds", n) % {"n": n}


class CompanyOperationsAdminMixin:
    """Mixed into CompanyAdmin: the add/remove/refresh actions and their confirmation view."""

    actions = ("add_product_action", "remove_product_action", "refresh_action")

    def has_run_operations_permission(self, request) -> bool:
        return can_run_operations(request.user)

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path(
                "operations/confirm/",
                self.admin_site.admin_view(self.confirm_operation_view),
                name="{}_{}_confirm_operation".format(*info),
            ),
            *super().get_urls(),
        ]

    @admin.action(
        description="Add a product to the selected companies…", permissions=["run_operations"]
    )
    def add_product_action(self, request, queryset):
        return self._confirmation(request, queryset, OperationKind.ADD_PRODUCT)

    @admin.action(
        description="Remove a product from the selected companies…", permissions=["run_operations"]
    )
    def remove_product_action(self, request, queryset):
        return self._confirmation(request, queryset, OperationKind.REMOVE_PRODUCT)

    @admin.action(
        description="Refresh data of the selected companies…", permissions=["run_operations"]
    )
    def refresh_action(self, request, queryset):
        return self._confirmation(request, queryset, OperationKind.REFRESH_PRODUCT)

    def _confirmation(self, request, queryset, kind):
        # "Select all" is carried as the list's query (its filters and search), which the
        # confirmation view applies again; ticked rows (one page at most) as their ids.
        if request.POST.get("select_across") == "1":
            initial = {"select_across": True, "list_query": request.GET.urlencode()}
        else:
            ids = queryset.order_by().values_list("pk", flat=True)
            initial = {"company_ids": ",".join(map(str, ids))}
        form = OperationRequestForm(initial={"kind": kind, **initial})
        return self._render_confirmation(
            request, form, kind=kind, count=queryset.order_by().count(), plan=None
        )

    def _selected_companies(self, request, form):
        """The companies the confirmed selection names, as a queryset (never a list of ids)."""
        if not form.cleaned_data.get("select_across"):
            return Company.objects.filter(pk__in=form.cleaned_data["company_ids"])
        listing = copy.copy(request)
        listing.method = "GET"
        listing.GET = QueryDict(form.cleaned_data["list_query"])
        listing.POST = QueryDict()
        try:
            changelist = self.get_changelist_instance(listing)
            return changelist.get_queryset(listing).order_by()
        except (IncorrectLookupParameters, DisallowedModelAdminLookup):
            return None

    def _render_confirmation(self, request, form, *, kind, count, plan, refused=None):
        label = SPECS[kind].kind.label
        context = admin_view_context(
            request,
            self,
            title="Confirm: " + label.lower(),
            form=form,
            kind=kind,
            kind_label=label,
            is_refresh=kind in dict(REFRESH_CHOICES),
            refresh_choices=REFRESH_CHOICES,
            count=count,
            plan=plan,
            refused=refused,
            estimate=_estimate_text(plan.queued) if plan else "",
            left_out_more=plan.skipped - len(plan.left_out) if plan else 0,
            can_ask_consent=_can_ask_consent(request.user),
            can_override_dual_sync=can_override_dual_sync(request.user),
            dual_sync_left_out=bool(plan)
            and any(reason.startswith(DUAL_SYNC_REASON_START) for reason in plan.skipped_reasons),
            custom_products=Product.objects.filter(kind=ProductKind.CUSTOM),
            confirm_url=reverse(
                f"admin:{self.model._meta.app_label}_{self.model._meta.model_name}"
                "_confirm_operation"
            ),
        )
        return TemplateResponse(request, "admin/operations/confirm.html", context)

    def confirm_operation_view(self, request):
        if not can_run_operations(request.user):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseRedirect(
                reverse(
                    f"admin:{self.model._meta.app_label}_{self.model._meta.model_name}_changelist"
                )
            )
        form = OperationRequestForm(request.POST)
        kind = request.POST.get("kind", OperationKind.ADD_PRODUCT)
        if kind not in COMPANY_KINDS:
            # Only the kinds this page offers; nothing is planned for any other.
            return HttpResponseBadRequest(
                f"kind: {kind!r} is not one of the operations this page offers "
                f"({', '.join(COMPANY_KINDS)}).",
                content_type="text/plain; charset=utf-8",
            )
        companies = self._selected_companies(request, form) if form.is_valid() else None
        if companies is None:
            if form.is_valid():
                form.add_error("list_query", "The selection is not readable; select again.")
            return self._render_confirmation(request, form, kind=kind, count=0, plan=None)
        arguments = form.service_arguments(companies)
        if arguments.get("parameters") and not can_override_dual_sync(request.user):
            return self._render_confirmation(
                request,
                form,
                kind=kind,
                count=companies.count(),
                plan=None,
                refused="Only an admin may add a product despite a dual-sync risk.",
            )
        # The services that write, and the CSV of every left-out company, go company by
        # company; the review counts in SQL (planning.operations_preview_summary).
        by_company = {**arguments, "company_ids": companies.values_list("pk", flat=True)}
        del by_company["companies"]
        try:
            summary = planning.operations_preview_summary(**arguments)
        except services.OperationRefused as refused:
            return self._render_confirmation(
                request,
                form,
                kind=kind,
                count=companies.count(),
                plan=None,
                refused=str(refused),
            )
        if "left_out_csv" in request.POST:
            return _left_out_csv(services.operations_preview(**by_company))
        needs_approval = _needs_approval(summary)
        if "confirm_and_ask" in request.POST and summary.awaiting_consent and not needs_approval:
            if not _can_ask_consent(request.user):
                raise PermissionDenied
            return self._confirm_and_ask(request, by_company)
        asked_to_confirm = "confirm" in request.POST or (
            "confirm_and_ask" in request.POST and needs_approval
        )
        if not asked_to_confirm:
            return self._render_confirmation(
                request, form, kind=kind, count=summary.selected, plan=summary
            )
        job, plan, approval = operations_start_or_request_approval(maker=request.user, **by_company)
        if approval is not None:
            self.message_user(
                request,
                f"{approval.summary}: above the four-eyes threshold, so it waits for a second "
                "person's approval.",
                messages.WARNING,
            )
            return HttpResponseRedirect(
                reverse("admin:approvals_approvalrequest_change", args=[approval.pk])
            )
        self.message_user(request, _started_message(job, plan), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:operations_job_change", args=[job.pk]))

    def _confirm_and_ask(self, request, arguments):
        """The add for the companies whose consent covers it, and a consent request to each of
        the others, whose add then waits for its grant; in one transaction, so neither half is
        done without the other."""
        product = arguments["product"]
        arguments = {**arguments, "company_ids": list(arguments["company_ids"])}
        job, plan = None, services.operations_preview(**arguments)
        with transaction.atomic():
            if plan.queued or plan.joined:
                job, plan = services.operations_start(**arguments, requested_by=request.user)
            # The companies to ask are the ones the plan written leaves out for consent, not
            # the ones the page showed a moment ago.
            asked = _awaiting_consent(plan, arguments)
            issued = product_add_consent_requests_create(
                companies=Company.objects.filter(pk__in=asked).order_by("name", "pk"),
                product=product,
                user=request.user,
            )
        csv_text = consent_links_csv_text(issued)
        context = admin_view_context(
            request,
            self,
            title=f"{product.name}: added where consent allows, asked for the rest",
            job=job,
            plan=plan,
            started=_started_message(job, plan) if job else "",
            product=product,
            issued_count=len(issued),
            emailed=sum(1 for link in issued if link.request.email),
            links_csv_href="data:text/csv;charset=utf-8;base64,"
            + base64.b64encode(csv_text.encode()).decode(),
            links_csv_name=f"consent-links-{product.identifier}.csv",
            requests_url=reverse("admin:consent_consentrequest_changelist")
            + "?reason=product_added",
        )
        response = TemplateResponse(request, "admin/operations/confirm_and_ask_done.html", context)
        # The page holds one-time consent links: never kept by a cache.
        response["Cache-Control"] = "no-store"
        return response


def _needs_approval(summary) -> bool:
    # Above the threshold, asking for consent waits too: the approval runs the plain start.
    return operations_need_approval(
        kind=summary.kind, company_count=summary.queued + summary.joined
    )


def _can_ask_consent(user) -> bool:
    """Who may add a product and send consent requests for it, as on a company's consent
    page (consent/admin.py `add_product_view`)."""
    return can_run_operations(user) and user.has_perm("consent.send_consent_requests")


def _awaiting_consent(plan, arguments) -> list[int]:
    """The companies an add left out because their consent does not cover the product: the
    ones a consent request lets the add go ahead for. Other reasons (already has it) are not
    helped by consent. Empty for kinds that cannot wait for consent (all but adding a product)."""
    if not SPECS[plan.kind].can_wait_for_consent or not plan.skipped:
        return []
    refused = planning.companies_refused_for_consent(
        SPECS[plan.kind],
        company_ids=list(plan.skipped),
        product=arguments["product"],
        data_types=arguments["data_types"],
    )
    return [company_id for company_id in plan.skipped if company_id in refused]


def _left_out_csv(plan) -> HttpResponse:
    """Every company left out of the request and why, for a selection of any size."""
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)
    writer.writerow(["company", "codat_id", "reason"])
    companies = {
        pk: (name, codat_id)
        for pk, name, codat_id in Company.objects.filter(pk__in=list(plan.skipped)).values_list(
            "pk", "name", "codat_id"
        )
    }
    for company_id, reason in plan.skipped.items():
        name, codat_id = companies.get(company_id, ("", ""))
        writer.writerow([name, codat_id, reason])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="left-out-{plan.kind}.csv"'
    return response


def _started_message(job, plan) -> str:
    joined = len(plan.joined)
    return (
        f"{job.description}: {len(plan.operations):,} queued, "
        + ngettext(
            "%(n)s joined an operation already running",
            "%(n)s joined operations already running",
            joined,
        )
        % {"n": f"{joined:,}"}
        + f", {len(plan.skipped):,} skipped."
    )


# -- jobs -------------------------------------------------------------------------------------


@admin.register(Job)
class JobAdmin(ReadOnlyMirrorAdmin):
    list_display = ("id", "description", "kind", "requested_by", "created_at", "progress")
    # A date filter rather than date_hierarchy: the hierarchy runs its own queries over the
    # whole (annotated) list before the page's.
    list_filter = ("kind", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("requested_by", "product")
    search_fields = ("description",)

    def get_queryset(self, request):
        # Counts are subqueries for the jobs on the page, read from the (job, state) index; a
        # join would aggregate every operation of every job first.
        return (
            super()
            .get_queryset(request)
            .annotate(
                _total=count_of_rows(Operation.objects, parent_field="job"),
                _finished=count_of_rows(
                    Operation.objects.filter(state__in=FINISHED_STATES), parent_field="job"
                ),
            )
        )

    @admin.display(description="finished / operations")
    def progress(self, job):
        return f"{job._finished:,} / {job._total:,}"

    def get_urls(self):
        # The login check (admin_view) comes first, then the method: 405 for a GET of a button.
        return [
            path(
                "<int:job_id>/progress.json",
                self.admin_site.admin_view(require_safe(self.progress_view)),
                name="operations_job_progress",
            ),
            path(
                "<int:job_id>/retry-failed/",
                self.admin_site.admin_view(require_POST(self.retry_failed_view)),
                name="operations_job_retry_failed",
            ),
            path(
                "<int:job_id>/cancel-rest/",
                self.admin_site.admin_view(require_POST(self.cancel_rest_view)),
                name="operations_job_cancel_rest",
            ),
            *super().get_urls(),
        ]

    @method_decorator(require_safe)
    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = admin_object_or_404(Job.objects.select_related("product", "requested_by"), object_id)
        context = admin_view_context(
            request,
            self,
            title=str(job),
            job=job,
            progress=_with_offered_actions(selectors.job_progress(job=job)),
            failures=selectors.job_failures(job=job),
            states=OperationState.choices,
            can_run=can_run_operations(request.user),
            paused_until=_paused_until(),
        )
        return TemplateResponse(request, "admin/operations/job.html", context)

    def progress_view(self, request, job_id):
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = get_object_or_404(Job, pk=job_id)
        progress = _with_offered_actions(selectors.job_progress(job=job))
        until = _paused_until()
        progress["paused_until"] = until.isoformat() if until else None
        return JsonResponse(progress)

    def retry_failed_view(self, request, job_id):
        job = self._job_for_change(request, job_id)
        count = services.job_retry_failed(job=job, requested_by=request.user)
        self.message_user(
            request,
            ngettext(
                "%(n)s failed operation queued again.",
                "%(n)s failed operations queued again.",
                count,
            )
            % {"n": f"{count:,}"},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:operations_job_change", args=[job.pk]))

    def cancel_rest_view(self, request, job_id):
        job = self._job_for_change(request, job_id)
        count = services.job_cancel_rest(job=job)
        self.message_user(
            request,
            ngettext(
                "%(n)s operation not yet started was cancelled; those already running finish.",
                "%(n)s operations not yet started were cancelled; those already running finish.",
                count,
            )
            % {"n": f"{count:,}"},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:operations_job_change", args=[job.pk]))

    def _job_for_change(self, request, job_id) -> Job:
        if not can_run_operations(request.user):
            raise PermissionDenied
        return get_object_or_404(Job, pk=job_id)


def _with_offered_actions(progress: dict) -> dict:
    """Which of the job page's buttons have something to act on: retrying needs failed rows,
    cancelling needs rows not yet started (a running row is never cancelled)."""
    counts = progress["counts"]
    progress["retry_offered"] = counts[OperationState.FAILED] > 0
    progress["cancel_offered"] = counts[OperationState.PENDING] > 0
    return progress


def _paused_until():
    try:
        return limiter.codat_calls_paused_until()
    except Exception:
        return None


# -- operations and stale reads ---------------------------------------------------------------


@admin.register(Operation)
class OperationAdmin(ReadOnlyMirrorAdmin):
    # Seven columns fit beside the navigation and the filters at 1440 px: attempts ride with
    # the state, the creation time is on each operation's page, long texts are shortened.
    list_display = (
        "id",
        "kind",
        "target",
        "state_and_attempts",
        "next_attempt_at",
        "short_error",
        "short_job",
    )
    list_filter = ("state", "kind", "product")
    list_select_related = ("company", "product", "consumer", "job")
    search_fields = ("company__name", "=company__codat_id", "last_error_correlation_id")
    raw_id_fields = ("company", "job")
    readonly_fields = (
        "kind",
        "company",
        "product",
        "consumer",
        "data_types",
        "parameters",
        "state",
        "attempts",
        "transient_failures",
        "abandoned_claims",
        "next_attempt_at",
        "enqueued_at",
        "claimed_at",
        "last_error",
        "last_error_status",
        "last_error_correlation_id",
        "result",
        "requested_by",
        "job",
        "created_at",
        "finished_at",
    )
    exclude = ("claim_token", "dedupe_key")

    class Media:
        css = ADMIN_LAYOUT_CSS

    @admin.display(description="acts on")
    def target(self, operation):
        return SPECS[operation.kind].target_of(operation)

    @admin.display(description="state", ordering="state")
    def state_and_attempts(self, operation):
        attempts = ngettext("%(n)d attempt", "%(n)d attempts", operation.attempts) % {
            "n": operation.attempts
        }
        return f"{operation.get_state_display()}, {attempts}"

    @admin.display(description="last error")
    def short_error(self, operation):
        return shortened(operation.last_error, 80)

    @admin.display(description="job", ordering="job")
    def short_job(self, operation):
        return shortened(operation.job, 20) if operation.job else None

    def get_urls(self):
        return [
            path(
                "stale/",
                self.admin_site.admin_view(require_safe(self.stale_view)),
                name="operations_operation_stale",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "stale_url": reverse("admin:operations_operation_stale"),
        }
        return super().changelist_view(request, extra_context=extra_context)

    def stale_view(self, request):
        """Reads overdue by more than the grace, for every company x product x data type."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        show_all = request.GET.get("all") == "1"
        failing = request.GET.get("failing") == "1"
        if failing:
            rows, title = selectors.failing_reads(), "Failing reads"
        elif show_all:
            rows, title = selectors.scheduled_reads(), "All scheduled reads"
        else:
            rows, title = selectors.stale_reads(), "Stale reads"
        product = _product_filter(request)
        if product is not None:
            rows = rows.filter(product=product)
            title = f"{title}: {product.name}"
        page = Paginator(rows, 100).get_page(request.GET.get("p"))
        filters = {
            key: value
            for key, value in (
                ("all", "1" if show_all else ""),
                ("failing", "1" if failing else ""),
                ("product", product.pk if product else ""),
            )
            if value
        }
        context = admin_view_context(
            request,
            self,
            title=title,
            page=page,
            items=selectors.freshness_items(page.object_list),
            show_all=show_all,
            failing=failing,
            product=product,
            filters=urlencode(filters),
            products=Product.objects.exclude(schedule_kind="none").order_by("name"),
            count=page.paginator.count,
            grace_minutes=settings.CODAT_RATE_LIMIT_FRESHNESS_GRACE_MINUTES,
            company_url=reverse("admin:companies_company_changelist"),
        )
        return TemplateResponse(request, "admin/operations/stale.html", context)


def _product_filter(request) -> Product | None:
    """The stale page's `?product=<id>`: None without one; a 404 for an id no product has (the
    page names the filter, so a stale link never shows every product's reads as that one's)."""
    value = request.GET.get("product", "")
    if not value:
        return None
    if not value.isdigit():
        raise Http404("product: not a product id")
    return get_object_or_404(Product, pk=int(value))


def company_link(company: Company):
    url = reverse("admin:companies_company_change", args=[company.pk])
    return format_html('<a href="{}">{}</a>', url, company.name)
