"""The tests' Prometheus is the demo's (bot.cli.prometheus_local), named here for the tests."""

from bot.cli.prometheus_local import (
    PrometheusServer,
    PrometheusUnavailable,
    backfill,
    binary,
    running_prometheus,
)

__all__ = ["PrometheusServer", "PrometheusUnavailable", "backfill", "binary", "running_prometheus"]
