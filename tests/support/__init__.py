"""Helpers the test suite (and the benchmarks) share: real servers to run against."""
