"""Solutions to the exercises of lesson 8, the capstone — one possible task of your own design.

Run: python lessons/solutions/08_capstone.py

A "shop" task: short orders over four items. The reward prefers cheap orders, the pointwise
constraint asks for no repeated item, and the moments ask for tea in 40 % of orders and
orders of about half the maximum length.
"""

import numpy as np

from toyfdiv import SequenceSpace, tasks, train
from toyfdiv.exercises import lesson8

# 1. The design.
space = SequenceSpace(["tea", "cake", "bread", "milk"], length=4, eos="</s>")
corpus = ["tea cake", "bread milk", "tea", "cake cake", "milk tea", "bread bread milk", "cake tea milk",
          "tea tea", "milk", "bread cake"]
base = tasks.pretrain(space, corpus, order=2, smoothing=0.5)
price = {"tea": 1.0, "cake": 3.0, "bread": 2.0, "milk": 1.5}
cost = sum(p * tasks.count(space, w).values for w, p in price.items())
task = tasks.Task("shop", "Orders of up to three items.", space, tuple(corpus), base,
                  tasks.Signal("cheap", -cost), tasks.no_repeat(space),
                  (tasks.contains(space, "tea"), tasks.mean_length(space)), np.array([0.4, 0.5]), beta=1.0)
verdict = lesson8.check_design(task)
print(verdict)
assert verdict

# 2. GDC pointwise: forward KL (DPG) to p = a·b/Z solves it; RLHF does not.
gdc = train(task.base, task.target("pointwise"), "forward_kl", steps=300, lr=0.1)
verdict = lesson8.check_pointwise_solution(task, gdc.policy)
print(verdict)
assert verdict
rlhf = train(task.base, task.target("rlhf"), "reverse_kl", steps=300, lr=0.1)
assert not lesson8.check_pointwise_solution(task, rlhf.policy)  # RLHF never saw the constraint

# 3. GDC distributional meets the moments; so does f-DPG on the hybrid target.
dist = train(task.base, task.target("distributional"), "forward_kl", steps=300, lr=0.1)
verdict = lesson8.check_moments_solution(task, dist.policy)
print(verdict)
assert verdict
hyb = train(task.base, task.target("hybrid"), "js", steps=300, lr=0.1)
assert lesson8.check_moments_solution(task, hyb.policy) and lesson8.check_pointwise_solution(
    task, hyb.policy, max_kl=np.inf)
