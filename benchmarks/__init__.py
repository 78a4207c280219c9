"""Speed and scale of toyfdiv's exact and sampled f-DPG steps, side by side with PyTorch.

Run ``python -m benchmarks.run`` (``--quick`` for a smoke run); see ``benchmarks/run.py``.
"""
