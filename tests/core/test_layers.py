"""The project's shape, checked: imports point down the floors, ML code stays plain Python, and the
web process never loads torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Each app may import only floors below it; ``training.ml`` is a plain library on the ground floor.
FLOORS = {
    "core": 0, "annotations": 1, "training": 2, "evaluation": 3, "arena": 4, "quality": 4, "operations": 4, "detoxsite": 5,
}
PROJECT = set(FLOORS)


def imported_modules(path: Path) -> list[str]:
    """Absolute names of everything ``path`` imports (relative imports resolved)."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                names.append(".".join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module or "")
    return names


def project_files(app: str) -> list[Path]:
    return [p for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts]


def upward_imports() -> list[str]:
    found = []
    for app, floor in FLOORS.items():
        for path in project_files(app):
            in_ml = path.is_relative_to(ROOT / "training" / "ml")
            for name in imported_modules(path):
                top = name.split(".")[0]
                if in_ml and (top in PROJECT or top == "django") and not name.startswith("training.ml"):
                    found.append(f"{path.relative_to(ROOT)} imports {name} (ML code stays plain Python)")
                elif top in PROJECT and top != app and not name.startswith("training.ml") and FLOORS[top] >= floor:
                    found.append(f"{path.relative_to(ROOT)} imports {name} (floor {FLOORS[top]} from floor {floor})")
    return found


def test_imports_point_down_the_floors_and_ml_code_imports_no_django():
    assert upward_imports() == []


def test_the_layer_check_catches_an_upward_import():
    bad = ROOT / "core" / "_layer_probe.py"
    bad.write_text("from annotations.models import Prompt\n")
    try:
        assert upward_imports() == ["core/_layer_probe.py imports annotations.models (floor 1 from floor 0)"]
    finally:
        bad.unlink()


@pytest.mark.parametrize("module", ["detoxsite.urls", "detoxsite.wsgi"])
def test_web_process_never_imports_torch(module):
    """Pages, the API and the admin serve without torch: only workers load models."""
    code = (
        "import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'detoxsite.settings'; django.setup(); "
        f"import importlib; importlib.import_module({module!r}); "
        "import annotations.services, training.services, evaluation.services, arena.services, quality.services; "
        "heavy = sorted(m for m in ('torch', 'transformers', 'trl', 'peft') if m in sys.modules); "
        "print(','.join(heavy)); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"the web process imported {result.stdout.strip()}: {result.stderr[-2000:]}"
