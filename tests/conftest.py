"""Root of the test suite. Fixture plugins live in tests/plugins/, one module per concern."""

from pathlib import Path

pytest_plugins = sorted(
    f"tests.plugins.{path.stem}"
    for path in (Path(__file__).parent / "plugins").glob("*.py")
    if path.stem != "__init__"
)
