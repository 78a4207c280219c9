"""toyfdiv: RLHF and GDC as one method — f-divergence minimisation, exact on toy spaces.

Every sequence of a tiny space is enumerated, so targets, divergences and f-DPG gradients
are computed exactly; sampled estimators are held against that truth.

>>> from toyfdiv import SequenceSpace, divergences, targets, fdpg, train

``toyfdiv.plots`` (matplotlib figures) is imported on its own, so that the library itself
needs only numpy and scipy.
"""

from . import conditional, divergences, experiments, fdpg, feedback, metrics, optim, simplex, targets, tasks
from .config import Config, run
from .policies import AutoregressivePolicy, NgramPolicy, Policy, TabularPolicy, TinyLM, TinyLMConfig
from .space import SequenceSpace
from .runs import Run, load_run, save_run
from .training import History, train

__all__ = [
    "SequenceSpace", "divergences", "targets", "tasks", "conditional", "fdpg", "optim", "metrics", "feedback",
    "train", "History", "Policy", "TabularPolicy", "AutoregressivePolicy", "NgramPolicy",
    "TinyLM", "TinyLMConfig", "experiments", "simplex", "Config", "run", "Run", "save_run", "load_run",
]
__version__ = "0.1.0"
