"""toyfdiv: RLHF and GDC as one method — f-divergence minimisation, exact on toy spaces.

Every sequence of a tiny space is enumerated, so targets, divergences and f-DPG gradients
are computed exactly; sampled estimators are held against that truth.

>>> from toyfdiv import SequenceSpace, divergences, targets, fdpg, train
"""

from . import divergences, fdpg, metrics, optim, targets, tasks
from .policies import AutoregressivePolicy, Policy, TabularPolicy
from .space import SequenceSpace
from .training import History, train

__all__ = [
    "SequenceSpace", "divergences", "targets", "tasks", "fdpg", "optim", "metrics",
    "train", "History", "Policy", "TabularPolicy", "AutoregressivePolicy",
]
__version__ = "0.1.0"
