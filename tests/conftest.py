"""Root of the test suite. Fixture plugins live in tests/plugins/, one module per thing started."""

from pathlib import Path

import pytest

# Plugins import one another; register them for assertion rewriting before any is imported.
pytest.register_assert_rewrite("tests.plugins")

# The SQLite test database and worker logs live here (it is not in git).
(Path(__file__).resolve().parent.parent / "var").mkdir(exist_ok=True)

pytest_plugins = sorted(
    f"tests.plugins.{path.stem}"
    for path in (Path(__file__).parent / "plugins").glob("*.py")
    if path.stem != "__init__"
)
