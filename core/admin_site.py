"""The portal's admin site: Django's, with the dashboard on its home page and the portal's own
pages listed in its menu.

Installed through `PortalAdminConfig` (INSTALLED_APPS), Django's documented way to replace the
default site, so `admin.site` and every `@admin.register` stay as they are.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import reverse


def _portal_pages(request) -> dict | None:
    """The pages no model list reaches, as one more "app" of the admin's menu, so they are in the
    sidebar of every page and on the home page, with only those the user may open."""
    user = request.user
    pages = [("Dashboard", reverse("admin:index"))]
    if user.has_perm("operations.view_operation"):
        stale = reverse("admin:operations_operation_stale")
        pages += [("Stale reads", stale), ("Scheduled reads", f"{stale}?all=1")]
    if user.has_perm("operations.view_job"):
        pages.append(("Jobs", reverse("admin:operations_job_changelist")))
    if len(pages) == 1:
        return None
    return {
        "name": "Pages",
        "app_label": "pages",
        "app_url": reverse("admin:index"),
        "has_module_perms": True,
        "models": [
            {
                "name": name,
                "object_name": name.replace(" ", ""),
                "admin_url": url,
                "add_url": None,
                "view_only": True,
                "perms": {"view": True},
            }
            for name, url in pages
        ],
    }


class PortalAdminSite(admin.AdminSite):
    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        if app_label is None and (pages := _portal_pages(request)):
            apps.insert(0, pages)
        return apps

    def index(self, request, extra_context=None):
        # Imported here: this module is loaded with the app registry, before any model.
        from core.dashboard import dashboard_for

        extra_context = {**(extra_context or {}), "dashboard": dashboard_for(request.user)}
        return super().index(request, extra_context=extra_context)


class PortalAdminConfig(AdminConfig):
    default_site = "core.admin_site.PortalAdminSite"
