"""Fixtures of the slurm backend's tests: the real cluster (see :mod:`tests.slurm.fixture`)."""

from __future__ import annotations

from tests.slurm.fixture import slurm_cluster

__all__ = ["slurm_cluster"]
