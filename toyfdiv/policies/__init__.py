"""Policies πθ over a sequence space: tabular, autoregressive (and, later, neural)."""

from .autoregressive import AutoregressivePolicy
from .base import Policy
from .tabular import TabularPolicy

__all__ = ["Policy", "TabularPolicy", "AutoregressivePolicy"]
