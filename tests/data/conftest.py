"""Fixtures for the data-layer tests: small corpora written under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def write_texts(tmp_path: Path):
    def write(texts: dict[str, str | bytes]) -> Path:
        root = tmp_path / "corpus"
        for rel, content in texts.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(content, encoding="utf-8")
        return root

    return write
