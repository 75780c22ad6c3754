"""End-to-end gray lanes: the TrafficRouting kind's controller and the Rollout's link to it.

- planner.py: pure, observed TrafficRouting → status, actions, requeue;
- routing.py: its router, built from the Rollouts' providers with OnlyTrafficRouting semantics;
- controller.py: the thin controller registered with the manager;
- link.py: what the Rollout controller observes of the TrafficRouting a Rollout names.
"""
