from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from approvals import services
from approvals.models import ApprovalRequest, ApprovalState, FourEyesPolicy


@admin.register(FourEyesPolicy)
class FourEyesPolicyAdmin(admin.ModelAdmin):
    """One row of thresholds, which admins edit (core/roles.py gives them the right)."""

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not FourEyesPolicy.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        policy = services.policy()
        return HttpResponseRedirect(
            reverse("admin:approvals_foureyespolicy_change", args=[policy.pk])
        )


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(admin.ModelAdmin):
    """Pending approvals: a second person approves (the action runs) or refuses it."""

    change_form_template = "admin/approvals/approvalrequest/change_form.html"
    list_display = ("created_at", "summary", "maker", "state", "checker", "decided_at")
    list_filter = ("state", "action")
    list_select_related = ("maker", "checker")
    readonly_fields = (
        "action",
        "summary",
        "arguments",
        "maker",
        "created_at",
        "state",
        "checker",
        "decided_at",
        "outcome",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "<int:pk>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="approvals_approvalrequest_decide",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        # The page opens on what waits.
        if not request.GET and not request.META.get("QUERY_STRING"):
            return HttpResponseRedirect(request.path + f"?state__exact={ApprovalState.PENDING}")
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        approval = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "can_decide": approval is not None
            and approval.state == ApprovalState.PENDING
            and approval.maker_id != request.user.pk,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def decide_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        approval = get_object_or_404(ApprovalRequest, pk=pk)
        try:
            approval = services.approval_decide(
                approval=approval,
                checker=request.user,
                approve="approve" in request.POST,
                reason=request.POST.get("reason", ""),
            )
        except services.ApprovalError as refused:
            self.message_user(request, str(refused), messages.ERROR)
        else:
            level = messages.ERROR if approval.state == ApprovalState.FAILED else messages.SUCCESS
            self.message_user(
                request, f"{approval.get_state_display().capitalize()}. {approval.outcome}", level
            )
        return HttpResponseRedirect(
            reverse("admin:approvals_approvalrequest_change", args=[approval.pk])
        )
