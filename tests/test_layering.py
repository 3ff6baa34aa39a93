"""Dependencies point one way: runtime <- modeling <- trainers <- export, hub_cards <- cli <- the scripts and benchmarks.

Every module of the five packages is parsed (``ast``; nothing is imported or run), and every import in it is
checked: module level and inside functions, absolute and relative. A package may import only itself and the
packages of lower layers. export and hub_cards share a layer and do not import each other (nothing needs it:
export makes files from a model, hub_cards describes a finished run). Nothing in the packages imports the
scripts' layer: ``run_ner_compress``, ``run_ner_predict`` or ``benchmarks``. ``runtime``, the lowest, imports
nothing of the project, and at module level only the standard library and numpy: the serve distribution ships it
alone, without torch.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from conftest import REPO

LAYERS = {"runtime": 0, "modeling": 1, "trainers": 2, "export": 3, "hub_cards": 3, "cli": 4}
SCRIPT_LAYER = {"run_ner_compress", "run_ner_predict", "benchmarks"}  # layer 5: imported by none
RUNTIME_MODULE_LEVEL = set(sys.stdlib_module_names) | {"numpy", "runtime"}  # torch & co. only inside functions


BEYOND = "<beyond the top-level package>"  # `from ...x` deeper than the module's package: Python refuses it


def imported_top_names(path: Path, package_parts: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line, top-level name) of each import in the file, in line order; relative imports are resolved against
    the module's package ``package_parts``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.ImportFrom):  # `from .` is the module's package, each further dot one up
            up = node.level - 1
            found.append((node.lineno, package_parts[0] if up < len(package_parts) else BEYOND))
    return sorted(found)


def layer_violations(root: Path) -> list[str]:
    """``file:line: package imports name`` for each import that goes up, sideways, or into the scripts."""
    problems = []
    for package, layer in LAYERS.items():
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            for line, name in imported_top_names(path, relative.parent.parts):
                if name == package:
                    continue
                if name in SCRIPT_LAYER or name == BEYOND or LAYERS.get(name, -1) >= layer:
                    problems.append(f"{relative}:{line}: {package} (layer {layer}) imports {name}")
    return problems


def test_lower_layers_never_import_higher_ones():
    assert layer_violations(REPO) == []


def module_level_imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level name) of the absolute imports that run when the module is imported: those outside
    functions and classes, ``if`` and ``try`` blocks included."""
    found, pending = [], list(ast.parse(path.read_text(encoding="utf-8")).body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, (ast.If, ast.Try)):
            pending += node.body + node.orelse + getattr(node, "finalbody", []) + [
                statement for handler in getattr(node, "handlers", []) for statement in handler.body]
    return sorted(found)


def test_runtime_imports_only_the_standard_library_and_numpy_at_module_level():
    modules = sorted((REPO / "runtime").rglob("*.py"))
    assert len(modules) > 5
    assert [f"{path.relative_to(REPO)}:{line}: {name}" for path in modules
            for line, name in module_level_imports(path) if name not in RUNTIME_MODULE_LEVEL] == []
    assert module_level_imports(REPO / "runtime" / "backends.py")  # the check does see imports


def test_the_layers_cover_every_package():
    """A new package must be given a layer here, or it escapes the check."""
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests"}
    assert packages == set(LAYERS) | {"benchmarks"}


def test_the_check_catches_planted_imports(tmp_path):
    """Each kind of wrong import, planted in a copy of the layout, is reported: the check cannot pass vacuously."""
    for package in LAYERS:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "runtime" / "up.py").write_text("import json\nimport numpy\ndef f():\n    from modeling import x\n")
    (tmp_path / "modeling" / "ok.py").write_text("import torch\nfrom . import student\nfrom .low_rank import x\n")
    (tmp_path / "modeling" / "up.py").write_text("def late():\n    from trainers.metrics import entity_scores\n")
    (tmp_path / "trainers" / "deep").mkdir()
    (tmp_path / "trainers" / "deep" / "rel.py").write_text("from ..metrics import x\nimport modeling\n"
                                                           "from ...export import predict\n")
    (tmp_path / "export" / "side.py").write_text("import hub_cards.card\nfrom trainers import atomic\n")
    (tmp_path / "hub_cards" / "script.py").write_text("class A:\n    def f(self):\n        import run_ner_compress\n"
                                                       "from benchmarks.compare import ROWS\n")
    (tmp_path / "export" / "late.py").write_text("def f():\n    from cli.checks import check_run\n")
    (tmp_path / "cli" / "script.py").write_text("import run_ner_compress\nfrom hub_cards import card\n")
    assert layer_violations(tmp_path) == [
        "runtime/up.py:4: runtime (layer 0) imports modeling",
        "modeling/up.py:2: modeling (layer 1) imports trainers",
        f"trainers/deep/rel.py:3: trainers (layer 2) imports {BEYOND}",
        "export/late.py:2: export (layer 3) imports cli",
        "export/side.py:1: export (layer 3) imports hub_cards",
        "hub_cards/script.py:3: hub_cards (layer 3) imports run_ner_compress",
        "hub_cards/script.py:4: hub_cards (layer 3) imports benchmarks",
        "cli/script.py:1: cli (layer 4) imports run_ner_compress",
    ]
