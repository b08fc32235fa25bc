"""Built-in corpora that every CPython install carries, so demos and tests need no download.

- `python-docs`: English prose. First the interpreter's bundled documentation
  topics (`pydoc_data.topics`, one document per topic, sorted by name), then per
  standard-library module the docstrings of the module, its classes and functions,
  extracted from the source with `ast` (modules are never imported), one document
  per module.
- `python-code`: the standard library's `.py` source, one document per file.

Both walk the standard library (`sysconfig.get_paths()["stdlib"]`) in sorted path
order and exclude test suites (directories `test`, `tests`, `idle_test`, files
`test_*.py`) and installed packages (`site-packages`, `dist-packages`).
"""

from __future__ import annotations

import ast
import sysconfig
import warnings
from pathlib import Path

CORPORA = ("python-docs", "python-code")
_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files() -> list[Path]:
    """Standard-library source files without tests and installed packages, sorted."""
    root = stdlib_root()
    out = []
    for p in root.rglob("*.py"):
        rel = p.relative_to(root)
        if _SKIP_DIRS & set(rel.parts[:-1]) or p.name.startswith("test_"):
            continue
        out.append(p)
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def _topics_file() -> Path:
    import pydoc_data.topics

    return Path(pydoc_data.topics.__file__)


def files(name: str) -> list[tuple[Path, str]]:
    """(path, kind) pairs of a built-in corpus, in reading order."""
    if name == "python-code":
        return [(p, "text") for p in stdlib_files()]
    return [(_topics_file(), "pydoc-topics")] + [(p, "docstrings") for p in stdlib_files()]


def docstrings(source: str) -> list[str]:
    """Docstrings of a module, its classes and functions, in source order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences in old modules
        tree = ast.parse(source)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                out.append((getattr(node, "lineno", 0), doc))
    return [d for _, d in sorted(out, key=lambda x: x[0])]


def topics() -> list[str]:
    """The bundled documentation topics (`pydoc_data.topics`), sorted by name."""
    import pydoc_data.topics

    found = pydoc_data.topics.topics
    return [found[key] for key in sorted(found)]
