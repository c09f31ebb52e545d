"""Assertions that cannot fail, found by their shape (``ast``).

Run it on the suite: ``.venv/bin/python -m tests.support.vacuous_asserts``
(or give paths). It lists only shapes that hold for every input; a test
that passes for the wrong reason in a subtler way (a loop over a collection
that happens to be empty, ``pytest.raises`` of an error raised for another
reason) still needs a reader. ``tests/unit/test_vacuous_asserts.py`` keeps
the suite free of these shapes.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

BROAD = {"Exception", "BaseException"}
SWALLOWED = {None, "Exception", "BaseException", "AssertionError"}


def _same(a: ast.expr, b: ast.expr) -> bool:
    calls = any(isinstance(n, ast.Call | ast.Await) for n in ast.walk(a))
    return not calls and ast.dump(a) == ast.dump(b)


def _always_true(test: ast.expr) -> bool:
    if isinstance(test, ast.Constant):
        return bool(test.value)
    return isinstance(test, ast.Tuple | ast.List | ast.Set | ast.Dict | ast.JoinedStr) and bool(
        getattr(test, "elts", None) or getattr(test, "keys", None) or getattr(test, "values", None)
    )


def _counts(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"


def _compare(test: ast.Compare) -> str | None:
    if len(test.ops) != 1:
        return None
    left, op, right = test.left, test.ops[0], test.comparators[0]
    if isinstance(op, ast.Eq | ast.Is | ast.GtE | ast.LtE) and _same(left, right):
        return "compares a value with itself"
    zero = isinstance(right, ast.Constant) and right.value == 0
    if isinstance(op, ast.GtE) and zero and _counts(left):
        return "a length is always >= 0"
    return None


def _why(test: ast.expr) -> str | None:
    if _always_true(test):
        return "asserts a constant"
    if (
        isinstance(test, ast.BoolOp)
        and isinstance(test.op, ast.Or)
        and any(_always_true(v) for v in test.values)
    ):
        return "'or' with a constant"
    if isinstance(test, ast.Compare):
        return _compare(test)
    return None


def _just_made(test: ast.expr, before: ast.stmt) -> bool:
    """``assert isinstance(v, T)`` / ``assert v is not None`` right after
    ``v = T(...)``."""
    if not isinstance(before, ast.Assign | ast.AnnAssign) or not isinstance(before.value, ast.Call):
        return False
    targets = before.targets if isinstance(before, ast.Assign) else [before.target]
    names = {ast.unparse(t) for t in targets}
    made = before.value.func
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Name):
        args = test.args
        return (
            test.func.id == "isinstance"
            and len(args) == 2
            and ast.unparse(args[0]) in names
            and ast.unparse(args[1]) == ast.unparse(made)
        )
    constructed = isinstance(made, ast.Name) and made.id[:1].isupper()
    return (
        constructed
        and isinstance(test, ast.Compare)
        and isinstance(test.ops[0], ast.IsNot)
        and ast.unparse(test.left) in names
    )


def _asserts(body: list[ast.stmt]) -> bool:
    return any(isinstance(n, ast.Assert) for s in body for n in ast.walk(s))


def _statement(node: ast.AST, prev: ast.stmt | None) -> Iterator[str]:
    if isinstance(node, ast.Assert):
        why = _why(node.test)
        if why:
            yield why
        if prev is not None and _just_made(node.test, prev):
            yield "checks what the line before just made"
    elif isinstance(node, ast.Try) and _asserts(node.body):
        for handler in node.handlers:
            caught = ast.unparse(handler.type) if handler.type else None
            if caught in SWALLOWED and all(isinstance(s, ast.Pass) for s in handler.body):
                yield f"an assertion inside try/except {caught or ''}: pass"
    elif isinstance(node, ast.With | ast.AsyncWith):
        for item in node.items:
            call = item.context_expr
            if (
                isinstance(call, ast.Call)
                and ast.unparse(call.func).endswith("raises")
                and call.args
                and ast.unparse(call.args[0]) in BROAD
            ):
                yield f"pytest.raises({ast.unparse(call.args[0])})"
    elif isinstance(node, ast.For | ast.AsyncFor) and _asserts(node.body):
        empty = isinstance(node.iter, ast.List | ast.Tuple | ast.Set) and not node.iter.elts
        if empty:
            yield "an assertion in a loop over nothing"


def findings(source: str, where: str) -> list[str]:
    """``where:line: why`` for each assertion in ``source`` that cannot fail."""
    found = []
    for parent in ast.walk(ast.parse(source)):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(parent, field, None)
            if not isinstance(body, list):
                continue
            prev: ast.stmt | None = None
            for node in body:
                if isinstance(node, ast.stmt):
                    found += [f"{where}:{node.lineno}: {why}" for why in _statement(node, prev)]
                    prev = node
    return sorted(set(found), key=lambda f: (f.split(":")[0], int(f.split(":")[1])))


def scan(paths: list[Path]) -> list[str]:
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.rglob("*.py")))
    return [f for file in files for f in findings(file.read_text(encoding="utf-8"), str(file))]


if __name__ == "__main__":
    found = scan([Path(a) for a in sys.argv[1:]] or [Path("tests")])
    print("\n".join(found) or "none found")
    sys.exit(1 if found else 0)
