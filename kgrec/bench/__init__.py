"""Scripted benchmark suites: datasets x models x seeds under one protocol, one table."""

from kgrec.bench.suite import BenchModel, Suite, load_suite

__all__ = ["BenchModel", "Suite", "load_suite"]
