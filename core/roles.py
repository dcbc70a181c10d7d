"""The three staff roles and what each may do: the one place permissions are decided.

viewer   reads everything in the portal's admin;
operator reads everything and runs operations (the custom, non-CRUD permissions such as
         companies.run_operations);
admin    may also edit configuration (products, data-type texts, schedules) and staff accounts.

Mirrors of Codat state stay read-only for every role: only services change them.
"""

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)

# Apps whose models the portal's staff work with.
PORTAL_APPS = ("companies", "products", "webhooks", "operations", "consent", "django_celery_beat")
DEFAULT_ACTIONS = ("add", "change", "delete", "view")


def _is_default_codename(codename_field: str = "codename") -> Q:
    condition = Q()
    for action in DEFAULT_ACTIONS:
        condition |= Q(**{f"{codename_field}__startswith": f"{action}_"})
    return condition


def permissions_for(role: str):
    in_portal = Q(content_type__app_label__in=PORTAL_APPS)
    view = in_portal & Q(codename__startswith="view_")
    run = in_portal & ~_is_default_codename()
    if role == VIEWER:
        return Permission.objects.filter(view)
    if role == OPERATOR:
        return Permission.objects.filter(view | run)
    if role == ADMIN:
        # API keys are made and revoked by admins only (the api app is not in PORTAL_APPS, so
        # viewers and operators do not even see the list of keys).
        return Permission.objects.filter(in_portal | Q(content_type__app_label__in=("auth", "api")))
    raise ValueError(f"unknown role {role!r}")


def create_roles() -> None:
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(permissions_for(role))


def sync_role_permissions() -> None:
    """Refresh the roles' permissions, once the migration that made the groups has run."""
    if Group.objects.filter(name__in=ROLES).count() == len(ROLES):
        create_roles()


def can_run_operations(user) -> bool:
    return user.is_active and user.has_perm("companies.run_operations")


# --- API scopes --------------------------------------------------------------------------------
# What an API key may do is the set of scopes an admin gave it; a staff session (the browsable
# API) gets the scopes its role allows. New scopes are added here and nowhere else.

SCOPE_READ = "read"
SCOPE_OPERATE = "operate"
SCOPE_CONSENT = "consent"
SCOPE_CATALOGUE = "catalogue"
API_SCOPES = {
    SCOPE_READ: "Read companies, operations, jobs, consent state, webhooks and the catalogue",
    SCOPE_OPERATE: "Create companies, add, remove and refresh products, retry and cancel jobs",
    SCOPE_CONSENT: "Read consent evidence and receipts; create consent requests and links",
    SCOPE_CATALOGUE: "Define products in the catalogue",
}


def api_scopes_of_staff(user) -> frozenset[str]:
    """The scopes a staff member's session has in the API: those of their role."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return frozenset()
    scopes = set()
    if user.has_perm("companies.view_company"):
        scopes.add(SCOPE_READ)
    if can_run_operations(user):
        scopes.add(SCOPE_OPERATE)
    if user.has_perm("consent.send_consent_requests"):
        scopes.add(SCOPE_CONSENT)
    if user.has_perm("products.change_product"):
        scopes.add(SCOPE_CATALOGUE)
    return frozenset(scopes)


def api_allows(*, scopes, needed: str) -> bool:
    return needed in scopes
