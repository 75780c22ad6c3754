"""`graylane status NAME --watch` in a real pseudo-terminal during a real release, read off the screen,
and `graylane plan` compared step by step with the pods a real release brings up."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest
from click.testing import CliRunner

from graylane.cli.main import cli
from graylane.kube.client import KubeClient
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.test_canary_seed import seed_one_v1alpha1, two_steps_v1beta1

pytestmark = pytest.mark.usefixtures("graylane_controller")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
FRAME = re.compile(r"Rollout\s+demo\s+namespace")


class Screen:
    """The output of a program in a pseudo-terminal, and the last frame the live view drew."""

    def __init__(self, args: list[str]) -> None:
        self.child = pexpect.spawn(sys.executable, args, dimensions=(40, 160), encoding="utf-8", timeout=5)
        self.buffer = ""

    def _read(self) -> None:
        try:
            while True:
                self.buffer += self.child.read_nonblocking(65536, timeout=0.2)
        except (pexpect.TIMEOUT, pexpect.EOF):
            return

    def frame(self) -> str:
        self._read()
        text = ANSI.sub("", self.buffer)
        starts = [m.start() for m in FRAME.finditer(text)]
        return text[starts[-1] :] if starts else ""

    async def shows(self, *needles: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        frame = ""
        while time.monotonic() < deadline:
            frame = await asyncio.to_thread(self.frame)
            if all(n in frame for n in needles):
                return frame
            assert self.child.isalive(), f"the live view exited: {ANSI.sub('', self.buffer)[-2000:]}"
        raise AssertionError(f"the screen never showed {needles}; last frame:\n{frame}")

    def close(self) -> None:
        self.child.terminate(force=True)


async def test_live_view_follows_a_release_through_approval(
    kube: KubeClient, namespace: str, kubeconfig: Path
) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(seed_one_v1alpha1())
    args = [
        "-m",
        "graylane.cli.main",
        "status",
        "demo",
        "--watch",
        "--kubeconfig",
        str(kubeconfig),
        "-n",
        namespace,
    ]
    screen = Screen(args)
    try:
        await screen.shows("Healthy", "no release in progress")
        await rel.when_image(V2)

        paused = await screen.shows(
            "step 1/2", "StepPaused", "waiting for approval", "1/1 ready (step wants 1)"
        )
        assert re.search(r"Stable pods\s+━+\s+5/5 ready", paused), paused
        assert "waiting for approval: run `graylane approve demo`" in paused
        assert re.search(r"▶\s+1/2\s+1\s+5\s+1\s+10%", paused), paused  # the current step's row

        await rel.when_approved()
        moved = await screen.shows("step 2/2", "2/2 ready (step wants 2)", "waiting for approval")
        assert re.search(r"▶\s+2/2\s+2\s+5\s+2\s+30%", moved), moved
        assert screen.child.isalive()
    finally:
        screen.close()


# -- plan versus a real release ----------------------------------------------------------------------


def _cli_json(kubeconfig: Path, namespace: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, [*args, "--kubeconfig", str(kubeconfig), "-n", namespace, "-o", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _expected(step: dict[str, Any]) -> dict[str, int]:
    pods = {V1: step["stable_pods"], V2: step["canary_pods"]}
    return {image: n for image, n in pods.items() if n}


@pytest.mark.parametrize(
    "rollout",
    [seed_one_v1alpha1(), two_steps_v1beta1("canary"), two_steps_v1beta1("partition")],
    ids=["seed-one-v1alpha1", "twenty-ninety-canary", "twenty-ninety-partition"],
)
async def test_plan_matches_the_observed_release(
    kube: KubeClient, namespace: str, kubeconfig: Path, rollout: dict[str, Any]
) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(rollout)
    plan = await asyncio.to_thread(_cli_json, kubeconfig, namespace, "plan", "demo")
    assert plan["replicas"] == 5

    await rel.when_image(V2)
    for step in plan["steps"]:
        await rel.then_paused_at(step["index"])
        await rel.then_pods(_expected(step), what=f"step {step['index']} as planned: {_expected(step)}")
        await rel.when_approved()
    await rel.then_completed()
    await rel.then_pods({V2: 5}, what="the plan's completion: every pod on the new version")
