"""The sandbox and the portal share no code (design invariant 8).

The sandbox is an implementation of Codat of its own: if it imported the portal's `codat/` client
(or any portal app), a misreading of Codat's documents could sit on both sides and every contract
test would still pass. The portal in turn reaches the sandbox only over HTTP, as it would reach the
real Codat. Imports are read with `ast`, so an import inside a function counts as much as one at the
top of a module.
"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SANDBOX = "sandbox"
# Tooling outside the portal's runtime: tests and benchmarks may start and drive the sandbox.
NOT_RUNTIME = {"tests", "bench", SANDBOX}


def repo_packages() -> set[str]:
    """Every top-level package of the repository (a folder with an __init__.py)."""
    return {path.parent.name for path in REPO.glob("*/__init__.py")}


def imported_roots(path: Path) -> set[str]:
    """The top-level names of every absolute import in a module."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def forbidden_imports(paths, forbidden: set[str]) -> list[str]:
    found = []
    for path in sorted(paths):
        for root in sorted(imported_roots(path) & forbidden):
            found.append(f"{path.relative_to(REPO)} imports {root}")
    return found


def portal_runtime_modules() -> list[Path]:
    modules = list(REPO.glob("*.py"))
    for package in repo_packages() - NOT_RUNTIME:
        modules += (REPO / package).rglob("*.py")
    return modules


def test_the_repository_layout_is_what_the_boundary_checks_assume():
    packages = repo_packages()
    assert {SANDBOX, "codat", "core", "portal", "companies", "products"} <= packages
    assert {"consent", "webhooks", "operations"} <= packages
    assert len(list((REPO / SANDBOX).rglob("*.py"))) > 10
    assert len(portal_runtime_modules()) > 50


def test_no_sandbox_module_imports_the_codat_client_or_a_portal_app():
    forbidden = repo_packages() - {SANDBOX}
    assert "codat" in forbidden
    assert forbidden_imports((REPO / SANDBOX).rglob("*.py"), forbidden) == []


def test_no_module_of_the_portals_runtime_imports_the_sandbox():
    assert forbidden_imports(portal_runtime_modules(), {SANDBOX}) == []


def test_the_import_reader_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        "import os.path\n"
        "from . import sibling\n"
        "def later():\n"
        "    from sandbox.demo import seed\n"
        "    import codat.client as client\n"
    )
    assert imported_roots(module) == {"os", "sandbox", "codat"}
