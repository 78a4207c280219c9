"""The README's tour runs as written."""

import pathlib
import re

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile("\n".join(blocks), "README.md", "exec"), ns)
    # the tour's claims hold
    fdpg, pol, rlhf = ns["fdpg"], ns["pol"], ns["rlhf"]
    assert np.allclose(fdpg.exact_gradient(pol, rlhf, "reverse_kl") * 1.0,
                       fdpg.rlhf_gradient(pol, ns["task"].reward.values, ns["log_a"], 1.0))
    assert np.isfinite(ns["hist"].metrics["divergence/js"]).all()


def test_readme_gives_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python -m pip install -r requirements.txt && streamlit run app.py" in text
    assert "python -m pip install -r requirements.txt && python -m pytest" in text
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pip install -r requirements.txt && python -m pytest" in ci
