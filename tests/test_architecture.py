"""docs/architecture.md against the code, the module-name rule, and the import contracts.

- Every module path the document names exists (dotted `rewarm.x.y` names, with at most
  one attribute after the module; `pkg/module.py` paths and bare `module.py` names), and its "Package layout" block
  lists every package and module under src/rewarm, and nothing else.
- No two modules share a file name, unless one is the `commands/` verb of the other.
- `lint-imports` keeps the contracts of pyproject.toml, and a dependency hidden inside a
  function breaks them (import-linter reads every import statement).
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PKG = SRC / "rewarm"
DOC = ROOT / "docs" / "architecture.md"


def _modules() -> list[Path]:
    """Every module file under src/rewarm, relative to it (packages' __init__ excluded)."""
    return sorted(p.relative_to(PKG) for p in PKG.rglob("*.py") if p.name != "__init__.py")


def _packages() -> list[Path]:
    return sorted(p.parent.relative_to(PKG) for p in PKG.rglob("*/__init__.py"))


def _layout_block(text: str) -> list[str]:
    """The lines of the fenced block under the "## Package layout" heading."""
    section = text.split("## Package layout", 1)[1]
    return section.split("```", 2)[1].strip("\n").splitlines()


def _layout_entries(lines: list[str]) -> list[Path]:
    """Paths of the layout block, relative to src/rewarm: `name.py` / `name/` entries at
    two-space indent, and `name.py` entries at four-space indent under the last package."""
    entries: list[Path] = []
    package: Path | None = None
    for line in lines[1:]:  # the first line is `src/rewarm/`
        match = re.match(r"( +)([A-Za-z_][\w]*(?:\.py|/))(?:\s|$)", line)
        if match is None:
            continue
        indent, name = len(match.group(1)), match.group(2)
        if indent == 2:
            path = Path(name.rstrip("/"))
            package = path if name.endswith("/") else None
            entries.append(path)
        elif indent == 4 and package is not None and name.endswith(".py"):
            entries.append(package / name)
    return entries


def _resolve_dotted(name: str) -> str | None:
    """None if `name` (rewarm.pkg.module[.attribute]) exists, else what is missing."""
    parts = name.split(".")
    known = 1  # `rewarm` itself
    for i in range(2, len(parts) + 1):
        rel = Path(*parts[1:i])
        if (PKG / rel).with_suffix(".py").is_file() or (PKG / rel / "__init__.py").is_file():
            known = i
        else:
            break
    rest = parts[known:]
    if not rest:
        return None
    if len(rest) > 1:
        return f"{'.'.join(parts[:known])} has no module {rest[0]!r}"
    module = importlib.import_module(".".join(parts[:known]))
    return None if hasattr(module, rest[0]) else f"{module.__name__} has no {rest[0]!r}"


def test_architecture_doc_names_only_existing_modules() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = []
    for name in sorted(set(re.findall(r"\brewarm(?:\.[A-Za-z_]\w*)+", text))):
        why = _resolve_dotted(name)
        if why is not None:
            missing.append(f"{name}: {why}")
    names = {rel.name for rel in _modules()}
    for path in sorted(set(re.findall(r"`([\w/]+\.py)`", text))):
        if "/" not in path:  # a bare file name: some module of that name
            if path not in names:
                missing.append(f"{path}: no module of that name")
        elif not ((PKG / path).is_file() or (ROOT / path).is_file()):
            missing.append(f"{path}: no such file under src/rewarm or the repository")
    assert missing == []


def test_package_layout_lists_every_package_and_module() -> None:
    listed = _layout_entries(_layout_block(DOC.read_text(encoding="utf-8")))
    assert len(listed) == len(set(listed)), "a path is listed twice"
    wanted = set(_modules()) | set(_packages())
    assert sorted(map(str, set(listed) - wanted)) == []  # listed but not in the code
    assert sorted(map(str, wanted - set(listed))) == []  # in the code but not described


def test_layout_parser_sees_entries() -> None:
    """The check above can fail: the parser finds packages, nested modules and modules."""
    lines = [
        "src/rewarm/",
        "  errors.py         UserError",
        "  config/           the run config:",
        "    schema.py       sections",
        "                    (continued prose naming fake.py is not an entry)",
        "  missing.py        not in the code",
    ]
    assert _layout_entries(lines) == [
        Path("errors.py"),
        Path("config"),
        Path("config/schema.py"),
        Path("missing.py"),
    ]
    assert _resolve_dotted("rewarm.runlog.schema") is not None  # renamed to records
    assert _resolve_dotted("rewarm.runlog.records.TrainRecord") is None


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_module_file_names_are_unique_except_a_verb_and_its_implementation() -> None:
    by_name: dict[str, list[Path]] = defaultdict(list)
    for rel in _modules():
        if rel.name != "__main__.py":
            by_name[rel.name].append(rel)
    clashes = []
    for name, paths in sorted(by_name.items()):
        if len(paths) == 1:
            continue
        verbs = [p for p in paths if p.parts[0] == "commands"]
        others = [p for p in paths if p.parts[0] != "commands"]
        if len(verbs) == 1 and len(others) == 1:
            target = "rewarm." + ".".join(others[0].with_suffix("").parts)
            if target in _imports(PKG / verbs[0]):
                continue  # `rewarm VERB` and the module that does the work
        clashes.append(f"{name}: {', '.join(map(str, paths))}")
    assert clashes == []


def _lint_imports(src: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
        "lint-imports"
    )
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [exe, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_import_contracts_hold_and_see_imports_inside_functions(tmp_path: Path) -> None:
    kept = _lint_imports(SRC, ROOT)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    # A copy of the package whose run log imports the trainer inside a function.
    shutil.copytree(PKG, tmp_path / "src" / "rewarm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    reader = tmp_path / "src" / "rewarm" / "runlog" / "reader.py"
    reader.write_text(
        reader.read_text(encoding="utf-8")
        + "\n\ndef _hidden() -> None:\n    from rewarm.train import trainer  # noqa: F401\n",
        encoding="utf-8",
    )
    broken = _lint_imports(tmp_path / "src", tmp_path)
    assert broken.returncode != 0
    assert "rewarm.runlog.reader -> rewarm.train.trainer" in broken.stdout
