"""The portal's admin site: Django's, with two-factor sign-in when STAFF_REQUIRE_2FA is on.

django-otp's OTPAdminSite does the same but is fixed at import; the setting is read per request
here so one process (and the tests) can run either way. The sign-in form and page are
django-otp's: the password, then a code from the authenticator app (TOTP) or one of the staff
member's recovery codes (a static device).
"""

from django.conf import settings
from django.contrib import admin
from django_otp.admin import OTPAdminAuthenticationForm, _admin_template_for_django_version
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


class PortalAdminSite(admin.AdminSite):
    site_header = "Codat portal"
    site_title = "Codat portal"
    index_title = "Operations"

    @property
    def login_form(self):
        return StaffSignInForm if settings.STAFF_REQUIRE_2FA else None

    @property
    def login_template(self):
        return _admin_template_for_django_version() if settings.STAFF_REQUIRE_2FA else None

    def has_permission(self, request):
        if not super().has_permission(request):
            return False
        # A session signed in with a password alone (before 2FA was required) is not enough.
        return not settings.STAFF_REQUIRE_2FA or request.user.is_verified()
