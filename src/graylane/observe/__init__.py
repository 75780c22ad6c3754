"""Observation shared by controllers: informer caches in, the frozen snapshots the planners read out.

- workloads.py: a Deployment and its ReplicaSets → the planner's `Workload` (pure: no I/O);
- workload_objects.py: a StatefulSet, DaemonSet or OpenKruise workload → the planner's `Workload` (pure);
- workload_kinds.py: the informers of those kinds, OpenKruise's found at start-up or when their CRD
  appears; workload_resources.py: each kind's API resource;
- traffic.py: the traffic objects a Rollout's or TrafficRouting's providers read (Services, Ingresses,
  HTTPRoutes, custom kinds, Lua scripts): the informers, their indexes, API discovery at start-up.

What it must not do: decide anything or write to the API server.
"""
