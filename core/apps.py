from axes import apps as axes_apps
from django.apps import AppConfig, apps
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate
from django_otp.plugins.otp_static import apps as otp_static_apps
from django_otp.plugins.otp_totp import apps as otp_totp_apps


def refresh_roles_after_migrate(sender=None, **kwargs) -> None:
    """Give the staff roles every permission once the last app's permissions exist.

    post_migrate fires once per app with models, in INSTALLED_APPS order, and each app's
    permissions are created by its own signal; only after the last one are they all there.
    (The core app has no models, so it never receives the signal itself.)
    """
    last_app = [config for config in apps.get_app_configs() if config.models_module][-1]
    if sender is None or sender.name != last_app.name:
        return
    from core.roles import sync_role_permissions

    sync_role_permissions()


class CoreConfig(AppConfig):
    """What every app shares: staff roles, admin mixins, the Redis and Codat clients, health."""

    name = "core"
    verbose_name = "Portal"

    def ready(self):
        from portal.schedules import ensure_periodic_tasks_after_migrate

        # Every migrate brings the roles' permissions (models added since) and the beat
        # schedule (portal/schedules.py) up to date.
        post_migrate.connect(refresh_roles_after_migrate, dispatch_uid="core.refresh_roles")
        post_migrate.connect(
            ensure_periodic_tasks_after_migrate, dispatch_uid="core.ensure_periodic_tasks"
        )


class PortalAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, whose `admin.site` is the portal's site (core/admin_site.py)."""

    default = False
    default_site = "core.admin_site.PortalAdminSite"


# Third-party apps under names staff read in the admin's menu (their labels, tables and
# permissions are unchanged: only the heading is theirs to word, not "OTP_TOTP" or "AXES").
# Each is `default = False`: with several configs here and none marked, Django would stop using
# CoreConfig for "core" (and its ready() would never run).
class TotpDevicesConfig(otp_totp_apps.DefaultConfig):
    default = False
    verbose_name = "Two-factor: authenticator apps"


class RecoveryCodesConfig(otp_static_apps.DefaultConfig):
    default = False
    verbose_name = "Two-factor: recovery codes"


class SignInLockoutsConfig(axes_apps.AppConfig):
    default = False
    verbose_name = "Sign-in attempts and lockouts"
