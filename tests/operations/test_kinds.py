"""The table of operation kinds: every kind has one spec, and the engine reads it instead of
branching on the kind."""

import ast
from pathlib import Path

from operations.kinds import KINDS_WITH_OPPOSITE, SPECS, TARGETS_WITH_COMPANY, Target
from operations.models import KINDS_ON_A_CONSUMER, KINDS_WITHOUT_COMPANY, OperationKind

OPERATIONS = Path(__file__).resolve().parents[2] / "operations"


def test_every_kind_has_exactly_one_spec_named_for_it():
    assert set(SPECS) == set(OperationKind.values)
    for kind, spec in SPECS.items():
        assert spec.kind == kind


def test_the_database_constraints_agree_with_what_each_spec_acts_on():
    assert set(KINDS_WITHOUT_COMPANY) == {
        kind for kind, spec in SPECS.items() if spec.target not in TARGETS_WITH_COMPANY
    }
    assert set(KINDS_ON_A_CONSUMER) == {
        kind for kind, spec in SPECS.items() if spec.target is Target.CONSUMER
    }


def test_opposite_changes_come_in_pairs_on_the_same_target():
    assert KINDS_WITH_OPPOSITE
    for kind in KINDS_WITH_OPPOSITE:
        opposite = SPECS[SPECS[kind].opposite]
        assert opposite.opposite == kind
        assert opposite.target is SPECS[kind].target


def test_a_product_change_moves_the_assignment_and_a_failed_removal_leaves_the_product_active():
    add = SPECS[OperationKind.ADD_PRODUCT].assignment
    remove = SPECS[OperationKind.REMOVE_PRODUCT].assignment
    assert (add.written, add.succeeded, add.failed) == ("pending_add", "active", "failed")
    assert (remove.written, remove.succeeded, remove.failed) == (
        "pending_removal",
        "removed",
        "active",
    )
    assert add.skip("active") and not add.skip("removed") and not add.skip(None)
    assert remove.skip(None) and remove.skip("removed") and not remove.skip("active")


def _compares_a_kind(node: ast.AST) -> bool:
    """`x == OperationKind.ADD_PRODUCT`, `kind in (OperationKind.A, ...)` and the like."""
    if not isinstance(node, ast.Compare):
        return False
    for side in (node.left, *node.comparators):
        for part in ast.walk(side):
            if (
                isinstance(part, ast.Attribute)
                and isinstance(part.value, ast.Name)
                and part.value.id == "OperationKind"
            ):
                return True
    return False


def test_the_engine_reads_the_spec_instead_of_branching_on_the_kind():
    branching = []
    for path in sorted(OPERATIONS.glob("*.py")):
        if path.name in ("kinds.py", "models.py"):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        branching += [
            f"{path.name}:{node.lineno}" for node in ast.walk(tree) if _compares_a_kind(node)
        ]
    assert branching == []
