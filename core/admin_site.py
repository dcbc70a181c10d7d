"""The portal's admin site: Django's, with the dashboard on its home page, the portal's own pages
in its menu, and two-factor sign-in when STAFF_REQUIRE_2FA is on. Installed as `admin.site` by
`core.apps.PortalAdminConfig` (INSTALLED_APPS), Django's documented way to replace the default
site, so every `@admin.register` stays as it is.

django-otp's OTPAdminSite does the same but is fixed at import; the setting is read per request
here so one process (and the tests) can run either way. The sign-in form and page are
django-otp's: the password, then a code from the authenticator app (TOTP) or one of the staff
member's recovery codes (a static device), or a passkey instead of all of that
(django-otp-webauthn: the button under the form); staff add passkeys on the Passkeys page.
"""

from django.conf import settings
from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django_otp.admin import OTPAdminAuthenticationForm
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice


class StaffSignInForm(OTPAdminAuthenticationForm):
    """One step: name, password and code together. The code says which device it is for, so
    staff need not pick one: digits are the authenticator app's, letters a recovery code's.
    Only that device is tried (django-otp refuses to try each in turn, which would count a
    failure against the others)."""

    def _chosen_device(self, user):
        device = super()._chosen_device(user)
        if device is not None:
            return device
        token = (self.cleaned_data.get("otp_token") or "").strip()
        kind = TOTPDevice if token.isdigit() else StaticDevice
        return kind.objects.devices_for_user(user, confirmed=True).first()


def _portal_pages(request) -> dict | None:
    """The pages no model list reaches, as one more "app" of the admin's menu, so they are in the
    sidebar of every page and on the home page, with only those the user may open."""
    user = request.user
    pages = [("Dashboard", reverse("admin:index")), ("Your passkeys", reverse("admin:passkeys"))]
    if user.has_perm("operations.view_operation"):
        stale = reverse("admin:operations_operation_stale")
        pages += [("Stale reads", stale), ("Scheduled reads", f"{stale}?all=1")]
    if user.has_perm("operations.view_job"):
        pages.append(("Jobs", reverse("admin:operations_job_changelist")))
    if user.has_perm("syncsettings.view_clientsyncsettings"):
        pages.append(("Sync settings", reverse("admin:syncsettings_clientsyncsettings_changelist")))
    if user.has_perm("syncmigration.view_migrationrun"):
        pages.append(("Migration runs", reverse("admin:syncmigration_migrationrun_changelist")))
    if len(pages) == 2:
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
    site_header = "Codat portal"
    site_title = "Codat portal"
    index_title = "Operations"

    @property
    def login_form(self):
        return StaffSignInForm if settings.STAFF_REQUIRE_2FA else None

    @property
    def login_template(self):
        # Django's or django-otp's sign-in page, with the passkey button under it.
        return (
            "admin/staff_login_2fa.html" if settings.STAFF_REQUIRE_2FA else "admin/staff_login.html"
        )

    def get_urls(self):
        passkeys = path("passkeys/", self.admin_view(self.passkeys_view), name="passkeys")
        return [passkeys, *super().get_urls()]

    def passkeys_view(self, request):
        """The signed-in staff member's own passkeys, and the button that adds one."""
        from django_otp_webauthn.models import WebAuthnCredential

        context = {
            **self.each_context(request),
            "title": "Your passkeys",
            "passkeys": WebAuthnCredential.objects.filter(user=request.user).order_by("pk"),
        }
        return TemplateResponse(request, "admin/passkeys.html", context)

    def has_permission(self, request):
        if not super().has_permission(request):
            return False
        # A session signed in with a password alone (before 2FA was required) is not enough.
        return not settings.STAFF_REQUIRE_2FA or request.user.is_verified()

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
