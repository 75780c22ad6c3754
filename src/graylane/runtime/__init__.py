"""graylane's reconcile runtime, below every controller (Rollout, BatchRelease, TrafficRouting, ...).

- manager.py: informers, work queues, workers, leader election, probes; the plan thread pool;
- loop.py: the one reconcile loop (cache → observe → pure plan → status → actions) a controller plugs
  its `Reconciler` into;
- writer.py: the write primitives (guarded patch/replace, create, delete, finalizers, status);
- expectations.py: a key waits to see its own writes in the caches before it decides again;
- errors.py: stale and refused writes; cache.py: typed views of cached objects.

What it must not do: know what a Rollout, BatchRelease or any other resource means; controllers do.
"""
