"""The benchmark's comparable summary, issue 14's targets, the history table and the profile summary."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.bench import history, profile, summary


def _phase(name: str, cpu: float, reconciles: int) -> dict[str, Any]:
    return {
        "name": name,
        "duration_s": 20.0,
        "loadavg_1m": 3.5,
        "controller_cpu_s": cpu,
        "reconciles": {"rollout/success": reconciles},
        "other_processes_cpu_s": 1.0,
    }


def _requests(total: int, writes: int, per_rollout: float, conflicts: dict[str, int]) -> dict[str, Any]:
    return {
        "total": total,
        "writes": writes,
        "writes_per_rollout_step": per_rollout,
        "conflicts_409": conflicts,
    }


def release_doc(n: int = 100) -> dict[str, Any]:
    return {
        "params": {"mode": "release", "rollouts": n, "started_at": "20261204T000000Z"},
        "machine": {"git_commit": "abcdef0123456789", "git_dirty": False, "loadavg_at_start": [2.0, 1, 1]},
        "outcome": {"completed": True, "all_paused_s": 20.04, "all_complete_s": 50.0},
        "memory": {"peak_rss_vmhwm_mb": 79.0, "rss_empty_caches_mb": 49.0, "rss_at_rest_mb": 70.0},
        "cpu": {"controller_total_s": 30.0},
        "phases": [_phase("step1", 4.0, 1000), _phase("step2", 6.0, 2000)],
        "requests": {
            "per_phase": {
                "step1": _requests(1000, 900, 9.0, {}),
                "step2": _requests(1500, 1400, 14.0, {"update rollouts/status": 3, "patch deployments": 2}),
            }
        },
    }


def test_release_summary_has_cpu_per_request_and_per_write() -> None:
    s = summary.summarise(release_doc())
    assert s["schema"] == summary.SCHEMA
    assert s["commit"] == "abcdef0123"
    assert s["release_controller_cpu_s"] == 10.0
    assert s["release_cpu_ms_per_request"] == 4.0  # 10 s over 2,500 requests
    assert s["release_cpu_ms_per_write"] == pytest.approx(4.348, abs=1e-3)  # over 2,300 writes
    assert s["step1_cpu_ms_per_request"] == 4.0
    assert s["step2_conflicts_per_rollout"] == 0.05
    assert s["step2_status_conflicts_per_rollout"] == 0.03  # only */status 409s
    assert s["step1_reconciles_per_rollout"] == 10.0
    assert s["all_paused_s"] == 20.0


def test_missing_phase_reads_as_not_measured() -> None:
    doc = release_doc()
    doc["phases"] = doc["phases"][:1]
    del doc["requests"]["per_phase"]["step2"]
    s = summary.summarise(doc)
    assert s["step2_controller_cpu_s"] is None
    assert s["release_cpu_ms_per_request"] is None


def test_issue14_targets_judge_each_figure() -> None:
    verdicts = {t.name: t.met for t in summary.issue14_targets(summary.summarise(release_doc()))}
    assert verdicts["RSS with empty caches"] is True
    assert verdicts["peak RSS at N=100"] is True
    assert verdicts["controller CPU per API request"] is True  # exactly 4 ms
    assert verdicts["writes per Rollout, step1"] is True
    assert verdicts["status conflicts per Rollout, step2"] is False
    assert verdicts["release -> all paused"] is True
    assert "controller CPU, release of 100" not in verdicts  # only judged at N=200


def test_issue14_targets_fail_when_over() -> None:
    doc = release_doc(200)
    doc["phases"][1]["controller_cpu_s"] = 50.0
    verdicts = {t.name: t.met for t in summary.issue14_targets(summary.summarise(doc))}
    assert verdicts["controller CPU, release of 200"] is False
    assert verdicts["controller CPU per API request"] is False
    assert verdicts["peak RSS at N=200"] is True  # 79 <= 95


def test_history_table_has_one_row_per_run_oldest_first() -> None:
    newer = release_doc()
    newer["params"]["started_at"] = "20261205T000000Z"
    newer["machine"]["git_dirty"] = True
    lines = history.rows([newer, release_doc()])
    assert lines[0].startswith("| run | N |")
    assert "20261204T000000Z `abcdef0123`" in lines[2]
    assert "20261205T000000Z `abcdef0123+`" in lines[3]
    assert "| 9 | 14 | 0 / 0.03 |" in lines[2]
    assert lines[-1] == ""


MAIN = "main (a/site-packages/x/cli.py:10)"
RUN = "run (src/graylane/runtime/loop.py:5)"
PROFILE = f"""\
{MAIN};{RUN};json_loads (python3.11/json/decoder.py:3) 6
{MAIN};{RUN} 2
{MAIN};recurse (src/graylane/r.py:1);recurse (src/graylane/r.py:2) 2
not a sample line
"""


def test_profile_summary_counts_inclusive_once_per_sample() -> None:
    found = profile.summarise(PROFILE.splitlines())
    assert found.samples == 10
    inclusive = dict(found.inclusive)
    assert inclusive["main (x/cli.py)"] == 1.0
    assert inclusive["run (graylane/runtime/loop.py)"] == 0.8
    assert inclusive["recurse (graylane/r.py)"] == 0.2  # on the stack twice, counted once
    assert dict(found.self_time)["json_loads (json/decoder.py)"] == 0.6


def test_profile_of_nothing_is_empty() -> None:
    assert profile.summarise([]).to_obj() == {"samples": 0, "top_inclusive": [], "top_self": []}
