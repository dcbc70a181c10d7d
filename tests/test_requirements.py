"""What production installs is enough for what production runs.

requirements.txt is all a deployment installs; requirements-devstack.txt adds what `make run`
starts in place of production's services (an embedded Redis, the Codat sandbox), and
requirements-dev.txt what only tests, benchmarks and tools need. A module that imports a package
from a file its code never gets installed with fails at import in production: these tests read
every module's imports (with `ast`, so nothing is imported) and name the offenders.
"""

import ast
import re
import sys
from functools import cache
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent
# Code that runs only in tests, benchmarks or `make run`, never in a deployment.
NOT_DEPLOYED = ("tests", "bench", ".venv", "var")
DEVSTACK_CODE = ("sandbox", "portal/devstack.py")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[([^\]]+)\])?==\S+$")
# Every virtualenv brings these itself; none of the files pins them.
COME_WITH_THE_VENV = {"pip", "setuptools"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(filename: str) -> dict[str, frozenset[str]]:
    """Distributions a requirements file pins itself (not through its `-r` includes), each with
    the extras it asks for."""
    names = {}
    for line in (REPO / filename).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-r "):
            continue
        match = PIN.match(line)
        assert match, f"{filename}: {line!r} is not pinned with =="
        extras = frozenset((match.group(2) or "").replace(" ", "").split(",")) - {""}
        names[canonical(match.group(1))] = extras
    return names


def unpinned_dependencies(pins: dict[str, frozenset[str]]) -> set[str]:
    """What the installed distributions in `pins` require (with their extras, and so on down)
    that `pins` does not pin: with only these files, pip would pick those versions itself."""
    missing, seen = set(), set()
    todo = list(pins.items())
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for text in distribution(name).requires or []:
            requirement = Requirement(text)
            wanted = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in ("", *extras)
            )
            dependency = canonical(requirement.name)
            if not wanted or dependency in COME_WITH_THE_VENV:
                continue
            if dependency not in pins:
                missing.add(f"{dependency} (for {name})")
            else:
                todo.append((dependency, frozenset(requirement.extras)))
    return missing


@cache
def distributions_of_imports() -> dict[str, set[str]]:
    return {
        module: {canonical(name) for name in names}
        for module, names in packages_distributions().items()
    }


def first_party() -> set[str]:
    return {path.stem for path in REPO.iterdir() if path.is_dir() or path.suffix == ".py"}


def imported_top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def deployed_modules() -> list[Path]:
    return sorted(
        path
        for path in REPO.rglob("*.py")
        if path.relative_to(REPO).parts[0] not in NOT_DEPLOYED
        and "tests" not in path.relative_to(REPO).parts
    )


def imports_outside(allowed: set[str], paths: list[Path]) -> dict[str, list[str]]:
    """Per module, the third-party imports no distribution in `allowed` provides."""
    local = first_party()
    offenders = {}
    for path in paths:
        wrong = []
        for name in sorted(imported_top_level_names(path)):
            if name in sys.stdlib_module_names or name in local:
                continue
            providers = distributions_of_imports().get(name, set())
            if not providers & allowed:
                wrong.append(f"{name} (from {', '.join(sorted(providers)) or 'nothing installed'})")
        if wrong:
            offenders[str(path.relative_to(REPO))] = wrong
    return offenders


def test_every_requirement_is_pinned_once_across_the_three_files():
    production, devstack, dev = (
        set(pinned("requirements.txt")),
        set(pinned("requirements-devstack.txt")),
        set(pinned("requirements-dev.txt")),
    )
    assert production & devstack == set()
    assert (production | devstack) & dev == set()


def test_each_set_pins_everything_its_packages_need():
    production = pinned("requirements.txt")
    for_run = production | pinned("requirements-devstack.txt")
    for_tests = for_run | pinned("requirements-dev.txt")
    assert unpinned_dependencies(production) == set()
    assert unpinned_dependencies(for_run) == set()
    assert unpinned_dependencies(for_tests) == set()


def test_deployed_modules_import_only_what_requirements_txt_installs():
    production = set(pinned("requirements.txt"))
    deployed = [
        path
        for path in deployed_modules()
        if not str(path.relative_to(REPO)).startswith(DEVSTACK_CODE)
    ]
    assert len(deployed) > 50  # the apps were found
    assert imports_outside(production, deployed) == {}


def test_make_runs_own_modules_import_nothing_that_only_the_tests_install():
    installed_for_run = set(pinned("requirements.txt")) | set(pinned("requirements-devstack.txt"))
    devstack = [
        path for path in deployed_modules() if str(path.relative_to(REPO)).startswith(DEVSTACK_CODE)
    ]
    assert any(path.name == "devstack.py" for path in devstack)
    assert imports_outside(installed_for_run, devstack) == {}
