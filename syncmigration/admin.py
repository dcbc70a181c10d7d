"""The migration runs: a list, a form that plans a run (the dry run is its first page), and the
run page with each step's progress, step 2's countdown, the canary's outcome and the buttons.
Every button calls one service; only admins hold `syncmigration.run_sync_migration`."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from approvals.models import ApprovalRequest
from core.admin_mixins import admin_object_or_404, admin_view_context
from syncmigration import selectors, services
from syncmigration.forms import MigrationRunForm
from syncmigration.models import MigrationRun, RunState, Stage

RUN_PERMISSION = "syncmigration.run_sync_migration"


def can_run_migrations(user) -> bool:
    return user.is_active and user.has_perm(RUN_PERMISSION)


@admin.register(MigrationRun)
class MigrationRunAdmin(admin.ModelAdmin):
    list_display = ("__str__", "state", "stage", "companies", "products_list", "created_by")
    list_filter = ("state",)
    list_select_related = ("created_by",)
    show_full_result_count = False

    @admin.display(description="companies")
    def companies(self, run):
        return len(run.company_ids) or run.plan.get("company_count", 0)

    @admin.display(description="products")
    def products_list(self, run):
        return ", ".join(product["name"] for product in run.plan.get("products", []))

    def has_add_permission(self, request):
        return can_run_migrations(request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/start/", view(self.start_view), name="syncmigration_start"),
            path(
                "<path:object_id>/continue/",
                view(self.continue_view),
                name="syncmigration_continue",
            ),
            path(
                "<path:object_id>/rollback/",
                view(self.rollback_view),
                name="syncmigration_rollback",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {
            "receiver_url": request.build_absolute_uri(reverse("webhooks:codat")),
            "canary_percent": 5,
        }
        form = MigrationRunForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                run = services.migration_run_create(
                    **form.service_arguments(), created_by=request.user
                )
            except services.MigrationRefused as refused:
                field, _, reason = str(refused).partition(": ")
                form.add_error(field if field in form.fields else None, reason or str(refused))
            else:
                self.message_user(
                    request,
                    "Planned. Nothing has been sent to Codat: read the plan, then start.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:syncmigration_migrationrun_change", args=[run.pk])
                )
        context = admin_view_context(
            request,
            self,
            title="Plan a sync migration",
            form=form,
            intro="Moves the companies from client-level to product-level sync settings in "
            "Codat's five steps. The next page is the dry run; nothing is sent before you "
            "start.",
            submit_label="Plan (dry run)",
        )
        return TemplateResponse(request, "admin/service_form.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = admin_object_or_404(MigrationRun.objects.select_related("created_by"), object_id)
        plan = run.plan or {}
        approval = None
        if run.state in (RunState.AWAITING_START_APPROVAL, RunState.AWAITING_CONTINUE_APPROVAL):
            approval = (
                ApprovalRequest.objects.filter(
                    action__startswith="sync_migration_", arguments__run_id=run.pk
                )
                .order_by("-created_at")
                .first()
            )
        may_act = can_run_migrations(request.user)
        wait = selectors.run_wait_status(run=run)
        context = admin_view_context(
            request,
            self,
            title=f"{run}: {run.get_state_display()}",
            run=run,
            plan=plan,
            products=plan.get("products", []),
            stage_labels=dict(Stage.choices),
            progress=selectors.run_progress(run=run),
            wait=wait,
            wait_left=selectors.format_seconds(wait.seconds_left) if wait else "",
            canary=selectors.canary_outcome(run=run),
            approval=approval,
            estimated=selectors.format_seconds(plan.get("estimated_seconds", 0)),
            wait_planned=selectors.format_seconds(plan.get("wait_seconds", 0)),
            can_start=may_act and run.state == RunState.PLANNED,
            can_continue=may_act and run.state in (RunState.CANARY_REVIEW, RunState.STOPPED),
            can_roll_back=may_act and run.state in services.ROLLBACK_FROM,
            refresh=run.state in (RunState.RUNNING, RunState.ROLLING_BACK),
        )
        return TemplateResponse(request, "admin/syncmigration/migrationrun/run.html", context)

    def _decision(self, request, object_id, act):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not can_run_migrations(request.user):
            raise PermissionDenied
        run = admin_object_or_404(MigrationRun.objects.all(), object_id)
        try:
            outcome = act(run)
        except services.MigrationRefused as refused:
            self.message_user(request, str(refused).partition(": ")[2] or str(refused), "error")
        else:
            if isinstance(outcome, ApprovalRequest):
                self.message_user(
                    request,
                    f"{outcome.summary}: above the four-eyes threshold, so it waits for a "
                    "second person's approval.",
                    messages.WARNING,
                )
                return HttpResponseRedirect(
                    reverse("admin:approvals_approvalrequest_change", args=[outcome.pk])
                )
            self.message_user(request, f"{outcome}: {outcome.get_state_display()}.", "success")
        return HttpResponseRedirect(
            reverse("admin:syncmigration_migrationrun_change", args=[run.pk])
        )

    def start_view(self, request, object_id):
        return self._decision(
            request,
            object_id,
            lambda run: services.migration_run_start(run=run, user=request.user),
        )

    def continue_view(self, request, object_id):
        return self._decision(
            request,
            object_id,
            lambda run: services.migration_run_continue(run=run, user=request.user),
        )

    def rollback_view(self, request, object_id):
        return self._decision(
            request,
            object_id,
            lambda run: services.migration_run_rollback(
                run=run, user=request.user, reason=request.POST.get("reason", "")
            ),
        )
