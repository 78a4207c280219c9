"""Policies πθ over a sequence space: tabular, log-linear, autoregressive, n-gram and the neural TinyLM.

Pretraining a TinyLM on a corpus lives one layer up, in :mod:`toyfdiv.pretraining`.
"""

from .autoregressive import AutoregressivePolicy
from .base import Policy
from .loglinear import LogLinearPolicy
from .ngram import NgramPolicy
from .tabular import TabularPolicy
from .tinylm import TinyLM, TinyLMConfig

__all__ = ["Policy", "LogLinearPolicy", "TabularPolicy", "AutoregressivePolicy", "NgramPolicy", "TinyLM", "TinyLMConfig"]
