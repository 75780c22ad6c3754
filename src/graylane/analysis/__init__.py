"""Metric analysis: conditions, the assessor, the statistical judge, the AnalysisRun planner, providers.

What this package does: everything between an AnalysisRun's spec and its verdict. The pure parts
(``expr``, ``assess``, ``judge``, ``planner``, ``templates``, ``validation``) take data and ``now`` and return
values; an import-linter contract keeps them free of I/O, clocks and clients. ``providers`` holds the
I/O: the Prometheus client and the judge's data fetch, behind a small contract.

What it must not do: talk to the Kubernetes API (the controller, in ``graylane.controller``, does).
"""
