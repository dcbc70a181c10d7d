"""Admin building blocks shared by the apps."""

from django.contrib import admin


class ReadOnlyMirrorAdmin(admin.ModelAdmin):
    """Mirrors of Codat state: every role may look, nobody edits them by hand.

    They change only through services, which the workers, webhooks and admin actions call.
    """

    show_full_result_count = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def admin_view_context(request, model_admin: admin.ModelAdmin, *, title: str, **extra) -> dict:
    """The context of a custom admin page (a confirmation, a job page, a report): the site's
    header, navigation and permissions, the model it belongs to for the breadcrumbs, a title."""
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        **extra,
    }
