"""The three staff roles and what each may do: the one place permissions are decided.

viewer   reads everything in the portal's admin;
operator reads everything and has the rights named in OPERATOR_RIGHTS, no more: running
         operations, replaying webhooks, sending consent requests and recording consent a
         customer gave. A new custom permission goes to admins only until it is listed here;
admin    may also edit configuration (products, consent and data-type texts, schedules), the
         webhook consumers (where Codat sends company data) and staff accounts;
compliance reads everything, consent evidence and receipts included, and the audit trail, and
         exports a company's data; it runs nothing.

Only admins and compliance read the audit trail: it names staff and their addresses.

The README's "Staff roles" table says the same, and tests/portal/test_roles_table.py holds the
two together. Mirrors of Codat state stay read-only for every role: only services change them.
"""

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
COMPLIANCE = "compliance"
ROLES = (VIEWER, OPERATOR, ADMIN, COMPLIANCE)

# Apps whose models the portal's staff work with.
PORTAL_APPS = (
    "companies",
    "products",
    "webhooks",
    "operations",
    "consent",
    "bankfeeds",
    "django_celery_beat",
    "approvals",
    "syncsettings",
    "syncmigration",
)
# An operator's rights beyond reading, each by name: a blanket grant of every custom permission
# once gave operators webhooks.manage_consumers, and with it a way to send company data to a
# URL of their choosing.
OPERATOR_RIGHTS = (
    "companies.run_operations",  # add or remove products, refresh data
    "webhooks.replay_event",
    "consent.send_consent_requests",
    "consent.record_consent_for_customer",
)
# What compliance reads and does beyond what a viewer reads: the trail, and a company's export.
COMPLIANCE_RIGHTS = (
    "audit.view_auditentry",
    "audit.export_company_data",
)


def _named(permissions) -> Q:
    condition = Q(pk__in=[])
    for name in permissions:
        app_label, codename = name.split(".", 1)
        condition |= Q(content_type__app_label=app_label, codename=codename)
    return condition


def permissions_for(role: str):
    in_portal = Q(content_type__app_label__in=PORTAL_APPS)
    view = in_portal & Q(codename__startswith="view_")
    if role == VIEWER:
        return Permission.objects.filter(view)
    if role == OPERATOR:
        return Permission.objects.filter(view | _named(OPERATOR_RIGHTS))
    if role == ADMIN:
        # API keys are made and revoked by admins only (the api app is not in PORTAL_APPS, so
        # viewers and operators do not even see the list of keys).
        return Permission.objects.filter(
            in_portal | Q(content_type__app_label__in=("auth", "api")) | _named(COMPLIANCE_RIGHTS)
        )
    if role == COMPLIANCE:
        return Permission.objects.filter(view | _named(COMPLIANCE_RIGHTS))
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


def can_erase_companies(user) -> bool:
    """GDPR erasure (companies/erasure.py): an admin's, as `companies.erase_company` is."""
    return user.is_active and user.has_perm("companies.erase_company")


def can_change_sync_settings(user) -> bool:
    """Edit Codat's sync settings (what Codat reads for every company): admins."""
    return user.is_active and user.has_perm("syncsettings.change_sync_settings")


def can_override_dual_sync(user) -> bool:
    """Add a custom product to companies at dual-sync risk, with a written reason: admins."""
    return user.is_active and user.has_perm("syncsettings.override_dual_sync")


def can_export_company_data(user) -> bool:
    return user.is_active and user.has_perm("audit.export_company_data")


# --- API scopes --------------------------------------------------------------------------------
# What an API key may do is the set of scopes an admin gave it; a staff session (the browsable
# API) gets the scopes its role allows. New scopes are added here and nowhere else.

SCOPE_READ = "read"
SCOPE_OPERATE = "operate"
SCOPE_CONSENT = "consent"
SCOPE_CATALOGUE = "catalogue"
API_SCOPES = {
    SCOPE_READ: (
        "Read companies, operations, jobs, consent state, webhooks, the catalogue and what synced"
        " to bank feeds"
    ),
    SCOPE_OPERATE: (
        "Create companies, add, remove and refresh products, retry and cancel jobs, submit"
        " bank-feed transactions"
    ),
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
