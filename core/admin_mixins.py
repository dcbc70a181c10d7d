"""Admin building blocks shared by the apps."""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.html import format_html

# The portal's additions to the admin's styles (lists and matrices that fit a 1440 px screen),
# for a ModelAdmin's `Media.css` or a custom page's `extrastyle` block.
ADMIN_LAYOUT_CSS = {"all": ("core/admin_layout.css",)}


def shortened(value, length: int):
    """`value` cut to `length` characters for a list column; the whole of it in the title
    attribute (a tooltip), so long ids and errors neither widen the list nor get lost."""
    text = str(value or "")
    if len(text) <= length:
        return text
    return format_html('<span class="shortened" title="{}">{}…</span>', text, text[: length - 1])


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


def admin_object_or_404(queryset, object_id: str):
    """The row of `queryset` named by `object_id` as it came in an admin URL, or Http404.

    A custom change view gets the id as text (`<path:object_id>`), and an id that is no primary
    key at all ("abc", or "1/retry" from a mistyped sub-page) names no row either: a plain
    `get(pk=...)` raises ValueError for it, which would answer 500.
    """
    model = queryset.model
    try:
        pk = model._meta.pk.to_python(unquote(object_id))
    except ValidationError:
        raise Http404(f"No {model._meta.verbose_name} has the id {object_id!r}.") from None
    return get_object_or_404(queryset, pk=pk)
