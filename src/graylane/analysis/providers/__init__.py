"""Metric providers: the I/O side of analysis (see ``graylane.analysis.contract`` for the contract).

``prometheus`` is the HTTP client; ``provider`` answers measurement requests with it (threshold queries
and the judge's data fetch).
"""

from graylane.analysis.providers.prometheus import ErrorKind, PrometheusClient, PrometheusError
from graylane.analysis.providers.provider import PrometheusProvider

__all__ = ["ErrorKind", "PrometheusClient", "PrometheusError", "PrometheusProvider"]
