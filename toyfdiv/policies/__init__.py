"""Policies πθ over a sequence space: tabular, autoregressive (and, later, neural)."""

from .autoregressive import AutoregressivePolicy
from .base import Policy
from .loglinear import LogLinearPolicy
from .ngram import NgramPolicy
from .tabular import TabularPolicy
from .tinylm import TinyLM, TinyLMConfig, pretrain_tinylm

__all__ = ["Policy", "LogLinearPolicy", "TabularPolicy", "AutoregressivePolicy", "NgramPolicy", "TinyLM", "TinyLMConfig", "pretrain_tinylm"]
