"""A workload's template revision is computed once per (uid, generation) and stays the revision."""

from __future__ import annotations

from typing import Any

from graylane.observe.workloads import RevisionCache, deployment_workload, template_revision


def dep(image: str, generation: int, uid: str = "u1") -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": image}]}}
    return {
        "metadata": {"name": "d", "namespace": "ns", "uid": uid, "generation": generation},
        "spec": {"replicas": 3, "template": template},
        "status": {"observedGeneration": generation},
    }


def test_the_cached_revision_is_the_computed_one_and_follows_the_generation() -> None:
    cache = RevisionCache()
    v1, v2 = dep("app:v1", 1), dep("app:v2", 2)
    assert cache.of(v1) == template_revision(v1["spec"]["template"])
    assert cache.of(v2) == template_revision(v2["spec"]["template"]) != cache.of(v1)
    assert len(cache) == 2


def test_a_hit_does_not_hash_again() -> None:
    cache = RevisionCache()
    first = cache.of(dep("app:v1", 1))
    # Same uid and generation: the stored revision is answered without looking at the template (a
    # template can only change with the generation, so this never happens to a real object).
    assert cache.of(dep("app:changed-without-generation", 1)) == first


def test_bounded_least_recently_used_first() -> None:
    cache = RevisionCache(size=2)
    cache.of(dep("a", 1, "u1"))
    cache.of(dep("b", 1, "u2"))
    cache.of(dep("a", 1, "u1"))  # u1 used again: u2 is now the oldest
    cache.of(dep("c", 1, "u3"))
    assert len(cache) == 2
    assert cache.of(dep("x", 1, "u1")) == template_revision(dep("a", 1)["spec"]["template"])


def test_an_object_without_uid_or_generation_is_not_cached() -> None:
    cache = RevisionCache()
    unsaved = dep("a", 0, "")
    assert cache.of(unsaved) == template_revision(unsaved["spec"]["template"])
    assert len(cache) == 0


def test_the_workload_snapshot_is_the_same_with_and_without_the_cache() -> None:
    v2 = dep("app:v2", 2)
    assert deployment_workload(v2, [], revisions=RevisionCache()) == deployment_workload(v2, [])
