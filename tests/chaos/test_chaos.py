"""Issue 10 item 6: concurrent releases of every style and provider under controller kills, an API-server
restart and cut connections, with rollbacks, deletions, disabling and newer revisions at random moments.

The run is seeded (the seed is printed first and in every failure) and bounded in time; its knobs are
in tests/chaos/settings.py. It fails on any duplicate canary Deployment, any batch with more new pods
Ready than its step allows, any release that did not end as asked with the workload handed back, and
anything graylane created that outlived its release.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from graylane.kube.client import KubeClient
from tests.chaos.cluster import ChaosCluster
from tests.chaos.run import ChaosRun
from tests.chaos.settings import ChaosSettings

# The budget (no release starts after it) plus the longest a last release may take to settle.
pytestmark = pytest.mark.timeout(ChaosSettings.from_env().budget + 900)


async def test_releases_under_faults_end_as_asked(
    chaos_settings: ChaosSettings, chaos_cluster: ChaosCluster, chaos_kube: KubeClient, tmp_path: Path
) -> None:
    report = await ChaosRun(chaos_settings, chaos_cluster, chaos_kube, tmp_path).go()

    print(report.summary())
    missing = sorted(kind for kind in chaos_settings.faults if not report.faults[kind])
    assert not missing, (
        f"faults never injected: {missing} (a run this short proves nothing about them; "
        f"set GRAYLANE_CHAOS_FAULTS for short runs)\n{report.failure()}"
    )
    clean = not (report.violations or report.duplicates or report.over_ready or report.orphans)
    assert clean, report.failure()
    # How many releases fit in the budget depends on the machine's load (a lane that stopped on a problem
    # is a violation above); the count is in the summary printed first.
    assert report.releases > 0, report.failure()
