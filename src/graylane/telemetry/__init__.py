"""What operators see of graylane: per-Rollout metrics, user-action Events, and traffic read back.

Kept apart from the controllers and the planners: the metrics and Events are derived from what the
informers deliver (old and new objects), never computed inside a reconcile, and the read-back of the
traffic actually routed is a pure function shared with the CLI. The package's __init__ imports nothing
so that `graylane status` can use `telemetry.routed` without loading prometheus_client or the manager.
"""
