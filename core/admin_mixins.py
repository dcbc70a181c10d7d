"""Admin building blocks shared by the apps."""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.functional import cached_property
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


def count_of_rows(queryset, *, parent_field: str) -> Coalesce:
    """How many rows of `queryset` point at the list's row (`parent_field` = OuterRef("pk")), as
    a subquery for `annotate`.

    A `Count` over a join aggregates every parent before the page's LIMIT (100,000 companies to
    show 100); the subquery runs once for each row on the page, from the foreign key's index.
    """
    counted = (
        queryset.filter(**{parent_field: OuterRef("pk")})
        .order_by()
        .values(parent_field)
        .annotate(rows=Count("*"))
        .values("rows")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


class RelatedChoicesListFilter(admin.SimpleListFilter):
    """A sidebar filter on a field of related rows ("has a connection that is Linked"), as
    `EXISTS`: a join would repeat the parent once per matching row and make the admin add
    DISTINCT (or its own EXISTS over the whole filtered list) to every query of the page.

    Subclasses set `title`, `related_model`, `parent_field` (its foreign key to the list's
    model), `field` (a field with choices) and `parameter_name`.
    """

    related_model = None
    parent_field = ""
    field = ""

    def lookups(self, request, model_admin):
        return self.related_model._meta.get_field(self.field).choices

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        matching = self.related_model.objects.filter(
            **{self.parent_field: OuterRef("pk"), self.field: self.value()}
        )
        return queryset.filter(Exists(matching))


class ChosenRowListFilter(admin.SimpleListFilter):
    """A filter on a foreign key that lists only the row already chosen (from a link such as a
    company page's "See all"), never every row: a sidebar of 100,000 companies is megabytes of
    HTML and a query over the whole table. Rows are found with the list's search instead.

    Subclasses set `title`, `related_model` and `parameter_name` (the admin's own
    `<field>__id__exact`, so existing links keep working).
    """

    related_model = None

    def lookups(self, request, model_admin):
        chosen = self.value()
        if not chosen or not str(chosen).isdigit():
            return ()
        row = self.related_model.objects.filter(pk=chosen).first()
        return ((str(row.pk), str(row)),) if row else ()

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if not str(self.value()).isdigit():
            return queryset.none()
        return queryset.filter(**{self.parameter_name: self.value()})


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


class FoldedInlineFormSet(BaseInlineFormSet):
    """The rows of one parent that a folded inline shows, and how many it leaves out.

    `max_num` bounds the forms an inline may add, not the rows it reads: a company with
    thousands of operations would render them all. The limit is a subquery of the first
    `row_limit` ids in the inline's order, so the page's queries stay the same in number
    and size whatever the parent holds.
    """

    # Set per parent by FoldedInline.get_formset.
    row_limit: int | None = None
    shown_rows: Q | None = None
    see_all_url: str = ""
    hidden_rows_text: str = ""

    def get_queryset(self):
        if not hasattr(self, "_queryset"):
            rows = self.queryset
            if self.shown_rows is not None:
                rows = rows.filter(self.shown_rows)
            if not rows.ordered:
                rows = rows.order_by("-pk")
            if self.row_limit is not None:
                rows = rows.filter(pk__in=Subquery(rows.values("pk")[: self.row_limit]))
            self._queryset = rows
        return self._queryset

    # Counting every row of a long history takes time in proportion to it: past this many rows
    # left out, the note says "more than" instead.
    hidden_count_cap = 1_000

    @cached_property
    def _counted(self) -> tuple[int, bool]:
        """(rows left out, whether there are more than that), counting at most
        `hidden_count_cap` of them."""
        shown = len(self.get_queryset())
        counted = self.queryset.order_by()[: shown + self.hidden_count_cap + 1].count()
        hidden = counted - shown
        if hidden > self.hidden_count_cap:
            return self.hidden_count_cap, True
        return hidden, False

    @cached_property
    def hidden_count(self) -> int:
        return self._counted[0]

    def hidden_rows_note(self) -> str:
        hidden, more = self._counted
        count = f"more than {hidden:,}" if more else f"{hidden:,}"
        return self.hidden_rows_text % {"count": count}


class FoldedInline(ReadOnlyInline):
    """A read-only inline that shows part of its parent's rows (the first `row_limit` in its
    order, those matching `shown_rows()`), says how many it leaves out, and links the list
    that holds them all (`see_all_url(obj)`)."""

    formset = FoldedInlineFormSet
    template = "admin/edit_inline/folded_tabular.html"
    row_limit: int | None = None
    # "%(count)s" is the number of rows left out.
    hidden_rows_text = "%(count)s more not shown."

    def shown_rows(self) -> Q | None:
        return None

    def see_all_url(self, obj) -> str:
        raise NotImplementedError

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.row_limit = self.row_limit
        formset.shown_rows = self.shown_rows()
        formset.hidden_rows_text = self.hidden_rows_text
        formset.see_all_url = self.see_all_url(obj) if obj is not None else ""
        return formset


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
