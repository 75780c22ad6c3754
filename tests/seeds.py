"""The seed files of ../shared/seeds (the how-to pages' YAML, verbatim), found beside the checkout.

The repository is checked out next to `shared/` (CI: a clone with a copy of shared/ beside it; a
worktree: a few levels further down), so the nearest ancestor holding `shared/seeds` is used. Tests
that replay a seed read its bytes from there and never keep a copy that could drift. Not finding it is
an error, never a skip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["seed_documents", "seed_path"]


def _seeds_dir() -> Path:
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "seeds"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no shared/seeds directory beside the checkout (searched above {__file__})")


def seed_path(name: str) -> Path:
    path = _seeds_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"seed {name} not found in {path.parent}")
    return path


def seed_documents(name: str) -> list[Any]:
    """The seed's YAML documents, parsed from its bytes as they are."""
    return [doc for doc in yaml.safe_load_all(seed_path(name).read_bytes()) if doc is not None]
