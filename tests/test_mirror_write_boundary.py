"""Only companies/ writes the Codat mirror (Company, Connection, DataTypeStatus, PullOperation).

Every other module goes through companies.services, where an older fact never overwrites a newer
one. This reads the source of every module outside companies/, migrations and tests, and finds
write calls on those models: through their managers (`Company.objects.create(...)`, including
querysets built from them), through related managers that hold their rows
(`company.connections.update(...)`), and `.save()` / `.delete()` on a row a function got from
them, was annotated with, or reached through a foreign key (`assignment.company.save()`).
"""

import ast
from pathlib import Path

import pytest
from django.apps import apps
from django.db import models

from companies.models import Company, Connection, DataTypeStatus, PullOperation

ROOT = Path(__file__).resolve().parent.parent
MIRROR_MODELS = (Company, Connection, DataTypeStatus, PullOperation)
WRITES = frozenset(
    {
        "create",
        "update",
        "update_or_create",
        "get_or_create",
        "bulk_create",
        "bulk_update",
        "save",
        "delete",
    }
)
ROW_WRITES = frozenset({"save", "delete"})
# Where a write outside companies/ is meant, and why.
ALLOWED = {
    # The benchmark wipes its own database between runs, as a test fixture would.
    ("bench/fleet_add.py", "reset_portal_data"),
    # The benchmark builds the companies of its own scratch database, as factories would.
    ("bench/company_page.py", "company_with_history"),
}


def mirror_classes() -> dict[str, set[str]]:
    """Module -> class names of the mirror models and their proxies (consent's CompanyConsent)."""
    found: dict[str, set[str]] = {}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.concrete_model in MIRROR_MODELS:
            found.setdefault(model.__module__, set()).add(model.__name__)
    return found


def relation_names() -> tuple[frozenset[str], frozenset[str]]:
    """Reverse accessors that hold mirror rows (`company.connections`), and foreign keys that
    point at one (`assignment.company`)."""
    reverse, forward = set(), set()
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if not field.is_relation or field.auto_created or field.related_model is None:
                continue
            if model._meta.concrete_model in MIRROR_MODELS and field.many_to_one:
                reverse.add(field.remote_field.get_accessor_name())
            if field.related_model._meta.concrete_model in MIRROR_MODELS and isinstance(
                field, models.ForeignKey | models.OneToOneField
            ):
                forward.add(field.name)
    return frozenset(reverse), frozenset(forward)


class MirrorWrites(ast.NodeVisitor):
    """Write calls on mirror models in one module's syntax tree, as
    (line, enclosing function, method called, code)."""

    def __init__(self, classes: dict[str, set[str]], reverse: frozenset, forward: frozenset):
        self.classes, self.reverse, self.forward = classes, reverse, forward
        self.model_names: set[str] = set()  # local names bound to a mirror model class
        self.model_modules: set[str] = set()  # local names bound to a module defining one
        self.row_functions: set[str] = set()  # functions of the module that return a row
        self.rows: list[set[str]] = [set()]  # per function: names holding a mirror row
        self.functions: list[str] = ["<module>"]
        self.found: list[tuple[int, str, str, str]] = []

    # -- imports -------------------------------------------------------------------------------

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if node.module in self.classes and alias.name in self.classes[node.module]:
                self.model_names.add(alias.asname or alias.name)
            if f"{node.module}.{alias.name}" in self.classes:
                self.model_modules.add(alias.asname or alias.name)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name in self.classes:
                self.model_modules.add(alias.asname or alias.name)

    # -- what an expression is -----------------------------------------------------------------

    def is_model(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.model_names
        if isinstance(node, ast.Attribute):
            module = ast.unparse(node.value)
            return any(
                module in (local, full) and node.attr in names
                for full, names in self.classes.items()
                for local in self.model_modules
            )
        return False

    def holds_mirror_rows(self, node: ast.expr) -> bool:
        """A manager, queryset or related manager of a mirror model, anywhere in a chain."""
        while True:
            if isinstance(node, ast.Call):
                node = node.func
            elif isinstance(node, ast.Subscript):
                node = node.value
            elif isinstance(node, ast.Attribute):
                if node.attr in ("objects", "_default_manager") and self.is_model(node.value):
                    return True
                if node.attr in self.reverse:
                    return True
                node = node.value
            else:
                return False

    def is_row(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.rows[-1]
        return isinstance(node, ast.Attribute) and node.attr in self.forward

    def yields_row(self, node: ast.expr | None) -> bool:
        if node is None:
            return False
        if isinstance(node, ast.Call) and (
            self.is_model(node.func)  # Company(...)
            or (isinstance(node.func, ast.Name) and node.func.id in self.row_functions)
            # get_object_or_404(Company, ...), a lock-or-create helper given the model
            or any(self.is_model(argument) for argument in node.args)
        ):
            return True
        return self.holds_mirror_rows(node) or self.is_row(node)

    def prepare(self, tree: ast.Module) -> None:
        """Imports and row-returning functions first: a call may come before a definition."""
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                self.visit(node)
        for node in ast.walk(tree):
            if isinstance(
                node, ast.FunctionDef | ast.AsyncFunctionDef
            ) and self.annotated_with_model(node.returns):
                self.row_functions.add(node.name)

    # -- names that hold rows ------------------------------------------------------------------

    def bind(self, target: ast.expr) -> None:
        # Names only: `event.company = row` makes `event` no row.
        if isinstance(target, ast.Name):
            self.rows[-1].add(target.id)
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self.bind(element)
        elif isinstance(target, ast.Starred):
            self.bind(target.value)

    def annotated_with_model(self, annotation: ast.expr | None) -> bool:
        return annotation is not None and any(
            self.is_model(part) for part in ast.walk(annotation) if isinstance(part, ast.expr)
        )

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node.name)
        arguments = node.args
        self.rows.append(
            {
                argument.arg
                for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)
                if self.annotated_with_model(argument.annotation)
            }
        )
        self.generic_visit(node)
        self.rows.pop()
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Assign(self, node: ast.Assign) -> None:
        if self.yields_row(node.value):
            for target in node.targets:
                self.bind(target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if self.yields_row(node.value) or self.annotated_with_model(node.annotation):
            self.bind(node.target)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        if self.holds_mirror_rows(node.iter):
            self.bind(node.target)
        self.generic_visit(node)

    # -- the writes ----------------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        function = node.func
        if isinstance(function, ast.Attribute) and function.attr in WRITES:
            receiver = function.value
            if self.holds_mirror_rows(receiver) or (
                function.attr in ROW_WRITES and self.yields_row(receiver)
            ):
                self.found.append(
                    (node.lineno, self.functions[-1], function.attr, ast.unparse(node)[:120])
                )
        self.generic_visit(node)


def mirror_writes(source: str) -> list[tuple[int, str, str, str]]:
    visitor = MirrorWrites(mirror_classes(), *relation_names())
    tree = ast.parse(source)
    visitor.prepare(tree)
    visitor.visit(tree)
    return visitor.found


def modules_outside_companies():
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        parts = relative.parts
        if parts[0] in ("companies", "tests", ".venv", "var") or "migrations" in parts:
            continue
        yield relative.as_posix(), path


def test_no_module_outside_companies_writes_the_mirror():
    found = [
        f"{relative}:{line} in {function}: {code}"
        for relative, path in modules_outside_companies()
        for line, function, _, code in mirror_writes(path.read_text())
        if (relative, function) not in ALLOWED
    ]
    assert found == [], "write the mirror through companies.services:\n" + "\n".join(found)


def test_the_allowed_exceptions_still_exist():
    # An exception whose code has gone should leave this list too.
    for relative, function in ALLOWED:
        writes = mirror_writes((ROOT / relative).read_text())
        assert any(name == function for _, name, _, _ in writes), (relative, function)


WRITES_THE_MIRROR = """
from companies.models import Company, Connection as MirroredConnection
from companies import models as mirror
from consent.models import CompanyConsent


def by_manager(codat_id):
    Company.objects.create(codat_id=codat_id)
    Company.objects.filter(codat_id=codat_id).update(name="x")
    MirroredConnection.objects.select_for_update().get(pk=1).delete()
    mirror.DataTypeStatus.objects.bulk_create([])
    CompanyConsent.objects.update_or_create(pk=1)
    mirror.PullOperation._default_manager.all()[:5].delete()


def by_relation(company: Company, assignment):
    company.connections.filter(status="Linked").update(status="Unlinked")
    company.save(update_fields=["name"])
    assignment.company.delete()


def by_row():
    row = MirroredConnection.objects.filter(pk=1).first()
    row.save()
    for status in mirror.DataTypeStatus.objects.all():
        status.delete()
    Company(name="x").save()
    found = get_object_or_404(Company, pk=1)
    found.delete()
    company = company_of(1)
    company.save()


def company_of(pk) -> Company | None:
    return None
"""

LEAVES_THE_MIRROR_ALONE = """
from companies.models import Company
from products.models import CompanyProduct
from companies.services import company_mirror_from_codat


def reads_and_other_tables(company: Company, event):
    Company.objects.filter(pk=1).exists()
    list(company.connections.values_list("status", flat=True))
    CompanyProduct.objects.filter(company=company).update(status="removed")
    event.company = Company.objects.filter(pk=1).first()
    event.save(update_fields=["company"])
    company_mirror_from_codat(data={})
"""

ANOTHER_CLASS_OF_THE_SAME_NAME = """
from sandbox.state import Company

Company.objects.create(name="x")
"""


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            WRITES_THE_MIRROR,
            [
                ("by_manager", "create"),
                ("by_manager", "update"),
                ("by_manager", "delete"),
                ("by_manager", "bulk_create"),
                ("by_manager", "update_or_create"),
                ("by_manager", "delete"),
                ("by_relation", "update"),
                ("by_relation", "save"),
                ("by_relation", "delete"),
                ("by_row", "save"),
                ("by_row", "delete"),
                ("by_row", "save"),
                ("by_row", "delete"),
                ("by_row", "save"),
            ],
        ),
        (LEAVES_THE_MIRROR_ALONE, []),
        (ANOTHER_CLASS_OF_THE_SAME_NAME, []),
    ],
    ids=["writes", "reads-and-other-tables", "not-the-model"],
)
def test_the_check_finds_each_kind_of_write_and_nothing_else(source, expected):
    found = mirror_writes(source)

    assert [(function, method) for _, function, method, _ in found] == expected
