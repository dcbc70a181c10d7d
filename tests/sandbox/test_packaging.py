"""The sandbox's package metadata (sandbox/pyproject.toml) is enough to run it on its own."""

import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from tests.test_boundaries import REPO, imported_roots

SANDBOX = REPO / "sandbox"


def project() -> dict:
    return tomllib.loads((SANDBOX / "pyproject.toml").read_text())


def declared_dependencies() -> dict[str, str]:
    """Distribution name (normalised) -> its requirement line."""
    found = {}
    for requirement in project()["project"]["dependencies"]:
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group()
        found[normalise(name)] = requirement
    return found


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party_imports() -> set[str]:
    roots = set()
    for path in SANDBOX.rglob("*.py"):
        roots |= imported_roots(path)
    return roots - set(sys.stdlib_module_names) - {"sandbox"}


def test_every_third_party_module_the_sandbox_imports_is_a_declared_dependency():
    providers = packages_distributions()
    declared = declared_dependencies()
    imports = third_party_imports()
    assert {"starlette", "uvicorn", "standardwebhooks"} <= imports
    for module in sorted(imports):
        distributions = {normalise(name) for name in providers.get(module, [])}
        assert distributions & set(declared), f"{module} is imported but not a dependency"


def test_every_declared_dependency_is_imported_and_pinned_as_the_portal_pins_it():
    providers = packages_distributions()
    provided = {
        normalise(name) for module in third_party_imports() for name in providers.get(module, [])
    }
    # The portal's production pins, and make run's, which is where the sandbox runs from.
    pins = {
        normalise(line.split("==")[0].split("[")[0]): line.strip()
        for path in ("requirements.txt", "requirements-devstack.txt")
        for line in (REPO / path).read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    for name, requirement in declared_dependencies().items():
        assert name in provided, f"{name} is a dependency the sandbox never imports"
        assert requirement == pins[name], f"{requirement} is not pinned as the portal pins it"


def test_the_package_is_this_folder_with_its_command():
    metadata = project()
    assert metadata["tool"]["setuptools"]["package-dir"] == {"sandbox": "."}
    assert metadata["tool"]["setuptools"]["packages"] == ["sandbox"]
    assert metadata["project"]["scripts"]["codat-sandbox"] == "sandbox.__main__:main"
