"""Property-based fuzz test of the public API (issue 14): every call ends clean or with a clear error.

Over spaces, divergences, targets, policies, gradients, training, metrics, feedback, Config/JSON,
saved runs and the CLI, hypothesis draws inputs — ordinary, extreme (1e±308, huge ints, −inf,
NaN) and malformed (text, wrong shapes, garbage JSON, damaged files) — and each call is
classified as

- **clean**: it returned, and what it returned passed the call's check (no NaN or inf where none
  belongs, distributions normalised to 1e-12, divergences ≥ 0, round trips exact);
- **clear**: it raised a ValueError or TypeError whose message names one of the call's own
  arguments (or a FileNotFoundError naming the path, for saved runs);
- **anything else**: any other exception (a MemoryError included: the module runs under an
  address-space limit, RLIMIT_AS = what it uses at the start + ``MEMORY_BOUND``), an unclear
  message, a failed check, or more than ``TIME_BOUND`` seconds — the test fails on the first
  one and reports the example that produced it.

Profiles: the default ("ci") is derandomised with a fixed example budget (≤ 60 s for the
module on a busy 2-core machine); ``TOYFDIV_FUZZ=long`` runs ~10× more examples with random
seeds and prints the counts (``-s`` to see them; ``TOYFDIV_FUZZ_REPORT=file.json`` writes them).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import math
import os
import re
import signal
import time
import resource
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from toyfdiv import SequenceSpace, divergences, fdpg, metrics, runs, targets, train
from toyfdiv.config import Config, run
from toyfdiv.feedback import dpo, fdpo, raters
from toyfdiv.policies import AutoregressivePolicy, NgramPolicy, TabularPolicy, TinyLM
from toyfdiv.policies.tinylm import TinyLMConfig

LONG = os.environ.get("TOYFDIV_FUZZ", "") == "long"
TIME_BOUND = 20.0  # seconds per call (a hang, not slowness: the machine may be shared)
MEMORY_BOUND = 2 * 2**30  # bytes of address space the module may add (RLIMIT_AS): beyond, MemoryError
_health = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
           HealthCheck.function_scoped_fixture]
_phases = (Phase.explicit, Phase.generate)  # no shrinking: the first failure is reported as drawn (fast)
settings.register_profile("toyfdiv-ci", derandomize=True, deadline=None, suppress_health_check=_health,
                          print_blob=True, database=None, phases=_phases)
settings.register_profile("toyfdiv-long", derandomize=False, deadline=None, suppress_health_check=_health,
                          print_blob=True, database=None, phases=_phases)
PROFILE = settings.get_profile("toyfdiv-long" if LONG else "toyfdiv-ci")


def examples(n: int):
    """The settings of one fuzz target: ``n`` examples in CI, 10 n in the long profile."""
    return settings(PROFILE, max_examples=10 * n if LONG else n)


TALLY: Counter = Counter()


class Overtime(Exception):
    pass


def _alarm(signum, frame):
    raise Overtime(f"over the time bound of {TIME_BOUND:g} s")


def _names(fn, extra=()) -> set[str]:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    return {*params, *extra} - {"self", "cls", "args", "kwargs"}


def _clear(err: BaseException, names: set[str]) -> bool:
    """A ValueError/TypeError whose message names one of ``names`` (as ``name=``, ``name has …`` etc.)."""
    if type(err) not in (ValueError, TypeError) and not isinstance(err, FileNotFoundError):
        return False
    msg = str(err)
    if isinstance(err, FileNotFoundError):
        return "run" in msg or "no such" in msg.lower()
    for name in names:  # "name=…", or the name as a word (a one-letter name only at the start: "w contains …")
        before = "^" if len(name) == 1 else r"(^|[^\w.])"
        if f"{name}=" in msg or re.search(before + re.escape(name) + r"($|[^\w=])", msg):
            return True
    return False


def call(label: str, fn, *args, check=None, names=(), **kwargs):
    """Run fn(*args, **kwargs), classify the outcome, fail on anything else; returns the result or None."""
    names = _names(fn, names)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_BOUND)
    start = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
    except Overtime as err:
        TALLY[label, "other"] += 1
        raise AssertionError(f"{label}: {err}") from None
    except Exception as err:  # noqa: BLE001 - classifying every exception is the point
        if _clear(err, names):
            TALLY[label, "clear"] += 1
            return None
        TALLY[label, "other"] += 1
        raise AssertionError(f"{label}: {type(err).__name__}: {err!s:.400} (argument names {sorted(names)})") from err
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    seconds = time.perf_counter() - start
    if check is not None:
        problem = check(result)
        if problem:
            TALLY[label, "other"] += 1
            raise AssertionError(f"{label}: returned {problem} (in {seconds:.2f} s)")
    TALLY[label, "clean"] += 1
    return result


# ---------------------------------------------------------------------------- checks of returned values
def normalised(log_p) -> str | None:
    lp = np.asarray(log_p, dtype=float)
    if np.isnan(lp).any() or np.isposinf(lp).any():
        return "a distribution with NaN or +inf log-probabilities"
    total = np.exp(lp).sum()
    return None if abs(total - 1.0) <= 1e-12 else f"an unnormalised distribution (Σ = {total!r})"


def target_ok(tgt) -> str | None:
    return normalised(tgt.log_probs)


def policy_ok(pol) -> str | None:
    return normalised(pol.log_probs())


def finite(x) -> str | None:
    arr = np.asarray(x, dtype=float)
    return None if np.isfinite(arr).all() else f"non-finite values {arr[~np.isfinite(arr)][:3]}"


def no_nan(x) -> str | None:
    arr = np.asarray(x, dtype=float)
    return None if not np.isnan(arr).any() else "NaN"


def divergence_value(v) -> str | None:
    if not isinstance(v, float) or math.isnan(v):
        return f"a divergence {v!r} that is not a float"
    return None if v >= -1e-12 else f"a negative divergence {v!r}"


# ---------------------------------------------------------------------------- strategies
EXTREME = st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-300, -1e-300, 5e-324, 1e16, -1e16, 1e300, -1e300, 1e308, -1e308,
                           math.inf, -math.inf, math.nan, 700.0, -800.0])
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), EXTREME,
                   st.floats(-50, 50, allow_nan=False))
NUMBERS = st.one_of(FLOATS, st.integers(-10**3, 10**3), st.sampled_from([10**20, 2**70, -10**400, 10**400, True]))
JUNK = st.sampled_from([None, "abc", "1.5", b"\xff", [], {}, [None], ["x", "y"], object(), np.array(2.0), 1j])
SCALARS = st.one_of(NUMBERS, JUNK)
NAMES = st.one_of(st.sampled_from(divergences.names()), st.builds(lambda a: f"alpha({a})", FLOATS),
                  st.builds(lambda b: f"gjsd({b})", FLOATS), st.text(max_size=12), JUNK)
SMALL_SPACES = [SequenceSpace(["a", "b"], 2), SequenceSpace(["a", "b", "c"], 2, eos="</s>"),
                SequenceSpace(["x"], 3, eos="$"), SequenceSpace(["a", "b"], 3, eos="</s>", unterminated=True),
                SequenceSpace(["a"], 1)]


def vectors(n: int, elements=FLOATS):
    return st.lists(elements, min_size=n, max_size=n).map(lambda v: np.array(v, dtype=float))


@st.composite
def log_probs(draw, n: int, zeros: bool = True):
    """A normalised log-probability vector of size n: random logits, extreme spreads, −inf zeros."""
    scale = draw(st.sampled_from([0.0, 1.0, 30.0, 1e3, 1e16, 1e300]))
    z = draw(vectors(n, st.floats(-1, 1))) * scale
    if zeros and n > 1:
        mask = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        if mask.all():
            mask[draw(st.integers(0, n - 1))] = False
        z = np.where(mask, -np.inf, z)
    return z - logsumexp(z)


def maybe_bad(good, bad=SCALARS):
    """Mostly a good value, sometimes a hostile one."""
    return st.one_of(good, good, good, bad)


# ---------------------------------------------------------------------------- spaces
@examples(40)
@given(vocab=st.one_of(st.lists(st.sampled_from(["a", "b", "c", "d", "", "a b", "é", "</s>"]), max_size=5), JUNK),
       length=st.one_of(st.integers(-2, 12), st.sampled_from([10**8, 2**40, 10**400]), JUNK),
       eos=st.one_of(st.none(), st.sampled_from(["</s>", "a", "", 5])), unterminated=st.booleans(),
       max_bytes=st.one_of(st.just(2**26), st.integers(-1, 2**40), JUNK), probe=st.integers(-3, 10**6))
def test_fuzz_spaces(vocab, length, eos, unterminated, max_bytes, probe):
    space = call("SequenceSpace", SequenceSpace, vocab, length, eos, unterminated=unterminated, max_bytes=max_bytes,
                 check=lambda s: None if s.size == SequenceSpace.size_of(s.n_vocab, s.length, s.eos is not None,
                                                                         s.unterminated) else "size ≠ size_of")
    call("SequenceSpace.size_of", SequenceSpace.size_of, len(vocab) if isinstance(vocab, list) else vocab, length,
         eos is not None)
    if space is not None:
        i = call("space.decode", space.decode, probe)
        if i is not None:
            call("space.index", space.index, i, check=lambda j: None if j == probe else f"index(decode({probe})) = {j}")
        call("space.index(junk)", space.index, probe if probe % 2 else np.array(2.0))


# ---------------------------------------------------------------------------- divergences
@examples(30)
@given(name=NAMES, t=st.one_of(FLOATS, vectors(3)), n=st.integers(1, 6), data=st.data())
def test_fuzz_divergences(name, t, n, data):
    div = call("divergences.get", divergences.get, name)
    if div is None:
        return
    for method in ("f", "f_prime", "f_double_prime"):
        call(f"FDivergence.{method}", getattr(div, method), t, check=no_nan)
    call("FDivergence.pseudo_reward", div.pseudo_reward, t, check=no_nan)
    call("FDivergence.curvature", div.curvature, t, check=no_nan)
    log_pi, log_p = data.draw(log_probs(n)), data.draw(log_probs(n))
    call("FDivergence.value", div.value, log_pi, log_p, check=divergence_value)
    call("FDivergence.value_terms", div.value_terms, log_pi, log_p, check=no_nan)
    call("FDivergence.weights", div.weights, log_pi, log_p, check=no_nan)
    call("FDivergence.value(junk)", div.value, data.draw(maybe_bad(st.just(log_pi))), data.draw(SCALARS))


# ---------------------------------------------------------------------------- targets
@examples(40)
@given(n=st.integers(1, 6), data=st.data())
def test_fuzz_targets(n, data):
    log_a = data.draw(maybe_bad(log_probs(n), st.one_of(vectors(n), JUNK)))
    reward = data.draw(maybe_bad(vectors(n, st.one_of(EXTREME, st.floats(-1e20, 1e20))), JUNK))
    beta, epsilon = data.draw(SCALARS), data.draw(st.one_of(st.floats(0, 1), SCALARS))
    call("targets.rlhf", targets.rlhf, log_a, reward, beta, check=target_ok)
    b = data.draw(maybe_bad(st.lists(st.booleans(), min_size=n, max_size=n).map(np.array), JUNK))
    call("targets.pointwise", targets.pointwise, log_a, b, epsilon, check=target_ok)
    k = data.draw(st.integers(1, 2))
    phi = data.draw(maybe_bad(st.lists(vectors(k, st.floats(-3, 3)), min_size=n, max_size=n).map(np.array), JUNK))
    mu = data.draw(maybe_bad(vectors(k, st.floats(-4, 4)), JUNK))
    call("targets.distributional", _quiet(targets.distributional), log_a, phi, mu, check=target_ok)
    call("targets.from_log_probs", targets.from_log_probs, data.draw(log_probs(n)), log_a, check=target_ok)


def _quiet(fn):
    """fn with ConvergenceWarning silenced (a warning is the documented outcome, not a finding)."""
    def wrapped(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", targets.ConvergenceWarning)
            return fn(*args, **kwargs)
    wrapped.__signature__ = inspect.signature(fn)
    return wrapped


# ---------------------------------------------------------------------------- policies and gradients
FAMILIES = {"tabular": TabularPolicy, "autoregressive": AutoregressivePolicy, "ngram": NgramPolicy,
            "tinylm": lambda space, seed=0: TinyLM(space, TinyLMConfig(n_embd=2, n_hidden=3), seed=seed)}


@examples(40)
@given(space=st.sampled_from(SMALL_SPACES), family=st.sampled_from(sorted(FAMILIES)),
       scale=st.sampled_from([0.0, 1.0, 30.0, 1e3, 1e16, 1e100, 1e300]), name=st.sampled_from(divergences.names()),
       n=st.one_of(st.integers(-1, 300), st.sampled_from([10**12, 2**70]), JUNK), data=st.data())
def test_fuzz_policies_and_gradients(space, family, scale, name, n, data):
    pol = FAMILIES[family](space, seed=0)
    theta = scale * data.draw(vectors(pol.n_params, st.floats(-1, 1)))
    pol = call("Policy.with_params", pol.with_params, theta, check=policy_ok)
    if pol is None:
        return
    call("Policy.sample", pol.sample, n, np.random.default_rng(0),
         check=lambda x: None if ((0 <= x) & (x < space.size)).all() else "an index outside the space")
    w = data.draw(maybe_bad(vectors(space.size, st.floats(-1e6, 1e6)), st.one_of(vectors(space.size), JUNK)))
    call("Policy.grad_log_prob_weighted", pol.grad_log_prob_weighted, w, check=finite)
    log_a = data.draw(log_probs(space.size, zeros=False))
    tgt = call("targets.rlhf", targets.rlhf, log_a, data.draw(vectors(space.size, st.floats(-5, 5))), 0.5)
    if tgt is not None:
        div = divergences.get(name)

        def gradient_ok(g):  # inf only where the divergence itself is infinite
            if np.isnan(g).any():
                return "a NaN gradient"
            return None if np.isfinite(g).all() or div.value(pol.log_probs(), tgt.log_probs) == math.inf else "inf"
        call("fdpg.exact_gradient", fdpg.exact_gradient, pol, tgt, div, check=gradient_ok)
        call("fdpg.sampled_gradient", fdpg.sampled_gradient, pol, tgt, div, n=data.draw(st.integers(1, 64)),
             rng=np.random.default_rng(1), baseline=data.draw(st.sampled_from(["none", "mean", "bogus"])),
             check=no_nan)


# ---------------------------------------------------------------------------- training
@examples(10)
@given(space=st.sampled_from(SMALL_SPACES[:3]), family=st.sampled_from(["tabular", "autoregressive", "ngram"]),
       name=st.sampled_from(divergences.names()), steps=st.one_of(st.integers(0, 6), JUNK),
       lr=st.one_of(st.sampled_from([1e-3, 0.1, 1.0, 10.0, 1e300]), SCALARS),
       optimizer=st.sampled_from(["adam", "sgd", "bogus"]), estimator=st.sampled_from(["exact", "sampled"]),
       beta=st.sampled_from([1e-3, 0.5, 1e3]), data=st.data())
def test_fuzz_training(space, family, name, steps, lr, optimizer, estimator, beta, data):
    pol = FAMILIES[family](space, seed=0)
    tgt = targets.rlhf(np.full(space.size, -np.log(space.size)), data.draw(vectors(space.size, st.floats(-3, 3))), beta)
    options = {"n": data.draw(st.integers(1, 32))} if estimator == "sampled" else {}

    def history_ok(h):
        bad = [k for k, v in h.metrics.items() if np.isnan(v).any()]
        if bad:
            return f"NaN in the History's {bad[:3]}"
        if any(np.isinf(v).any() for k, v in h.metrics.items() if not k.startswith("divergence/")):
            return "inf in a History metric"
        return normalised(h.policy.log_probs())
    call("train", train, pol, tgt, name, steps=steps, lr=lr, optimizer=optimizer, estimator=estimator, seed=0,
         check=history_ok, names=("step", "lr", "learning rate", "steps", "optimizer", "gradient", "loss"), **options)


# ---------------------------------------------------------------------------- metrics
@examples(50)
@given(n=st.integers(1, 6), k=st.one_of(st.integers(-1, 10**6), JUNK), data=st.data())
def test_fuzz_metrics(n, k, data):
    lp = data.draw(maybe_bad(log_probs(n), st.one_of(vectors(n), vectors(n + 1), JUNK)))
    lq = data.draw(maybe_bad(log_probs(n), st.one_of(vectors(n), JUNK)))
    call("metrics.kl", metrics.kl, lp, lq, check=divergence_value)
    call("metrics.entropy", metrics.entropy, lp, check=lambda h: None if h >= -1e-12 and math.isfinite(h) else f"H = {h}")
    call("metrics.expected_distinct", metrics.expected_distinct, lp, k, check=finite)
    values = data.draw(maybe_bad(vectors(n, st.one_of(EXTREME, st.floats(-1e10, 1e10))), JUNK))
    call("metrics.expectation", metrics.expectation, lp, values, check=finite)
    call("metrics.rlhf_objective", metrics.rlhf_objective, lp, values, lq, data.draw(SCALARS), check=no_nan)
    tgt = targets.rlhf(np.full(n, -np.log(n)), np.linspace(0, 1, n), 1.0)
    call("metrics.evaluate", metrics.evaluate, lp, tgt, data.draw(st.one_of(st.none(), st.lists(NAMES, max_size=2))),
         check=lambda row: None if all(not math.isnan(v) for v in row.values()) else "NaN in a metric")


# ---------------------------------------------------------------------------- feedback
@examples(30)
@given(n=st.integers(2, 6), data=st.data())
def test_fuzz_feedback(n, data):
    utility = data.draw(maybe_bad(vectors(n, st.floats(-1e3, 1e3)), st.one_of(vectors(n), JUNK)))
    rater = call("raters.Rater", raters.Rater, utility, data.draw(st.one_of(st.floats(1e-3, 1e3), SCALARS)),
                 threshold=data.draw(st.one_of(st.floats(-5, 5), SCALARS)))
    source = data.draw(maybe_bad(log_probs(n), st.one_of(vectors(n), JUNK)))
    pairs = data.draw(st.one_of(st.integers(-1, 2000), st.sampled_from([10**9]), JUNK))
    if rater is not None:
        call("raters.collect_preferences", raters.collect_preferences, rater, source, pairs, np.random.default_rng(0),
             check=lambda d: None if (d.winners != d.losers).all() else "a pair with x = y")
        call("raters.collect_thumbs", raters.collect_thumbs, rater, source, pairs, np.random.default_rng(0))
        call("raters.bayes_accuracy", raters.bayes_accuracy, rater, source,
             check=lambda a: None if 0.5 - 1e-12 <= a <= 1 + 1e-12 else f"an accuracy {a}")
    ref = data.draw(maybe_bad(log_probs(n, zeros=False), JUNK))
    reward = data.draw(maybe_bad(vectors(n, st.one_of(EXTREME, st.floats(-1e6, 1e6))), JUNK))
    beta = data.draw(st.one_of(st.sampled_from([1e-6, 1e-3, 1.0, 1e3]), SCALARS))
    call("dpo.dpo_optimum", dpo.dpo_optimum, ref, reward, beta, check=normalised)
    name = data.draw(st.one_of(st.sampled_from(["reverse_kl", "forward_kl", "js", "hellinger", "alpha(0.3)",
                                                 "gjsd(0.7)", "tv", "pearson"]), NAMES))
    call("fdpo.fdpo_optimum", fdpo.fdpo_optimum, ref, reward, beta, name, check=normalised)


# ---------------------------------------------------------------------------- Config and JSON
JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False,
                           allow_infinity=False), st.text(max_size=8)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6),
                                                                                                inner, max_size=3)),
                           max_leaves=8)
CONFIG_FIELDS = {f: st.one_of(JSON_VALUES, st.just(getattr(Config(), f))) for f in Config().to_dict()}


@examples(50)
@given(fields=st.fixed_dictionaries({}, optional=CONFIG_FIELDS), raw=st.one_of(st.binary(max_size=40),
       st.sampled_from([b'{"lr": NaN}', b"[" * 5000 + b"]" * 5000, b'{"task": "\xff"}', b"\xef\xbb\xbf{}"])))
def test_fuzz_config_json(fields, raw):
    config = call("Config.from_dict", Config.from_dict, fields, names=tuple(Config().to_dict()) + ("config",))
    if config is not None:
        call("Config JSON round trip", lambda c: Config.from_json(c.to_json()), config,
             check=lambda back: None if back == config else "a round trip that changed the Config")
    call("Config.from_json", Config.from_json, raw, names=tuple(Config().to_dict()) + ("JSON", "text"))
    call("Config.from_json(text)", Config.from_json, json.dumps(fields, default=str),
         names=tuple(Config().to_dict()) + ("JSON", "text"))


# ---------------------------------------------------------------------------- saved runs and the CLI
@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-runs")
    config = Config(task="abc", length=2, divergence="js", steps=3, policy="tabular")
    hist = run(config)
    from toyfdiv.__main__ import main

    with contextlib.redirect_stdout(io.StringIO()):  # the CLI's imports, once, outside the time bound
        main(["show", str(runs.save_run(folder / "warm", config, hist)), "--no-figures"])
    return runs.save_run(folder / "good", config, hist), hist


FIELD_EDITS = st.one_of(JSON_VALUES, st.sampled_from([[], [1], "abc", 5, {"a": []}, -1, 1e308, "Infinity", "NaN"]))


@examples(30)
@given(mode=st.sampled_from(["flip-json", "flip-npz", "truncate-json", "truncate-npz", "field", "field-resigned",
                             "array-resigned", "delete"]),
       where=st.floats(0, 1), bit=st.integers(0, 7), field=st.sampled_from(runs.FIELDS), value=FIELD_EDITS,
       array=st.sampled_from(["m0", "step", "params"]),
       replacement=st.sampled_from(["nan", "short", "float32", "2d", "text", "empty"]))
def test_fuzz_saved_runs(saved_run, tmp_path_factory, mode, where, bit, field, value, array, replacement):
    good, hist = saved_run
    folder = tmp_path_factory.mktemp("damaged")
    dest = folder / "r"
    dest.mkdir()
    for name in ("run.json", "arrays.npz"):
        (dest / name).write_bytes((good / name).read_bytes())
    target = dest / ("run.json" if "json" in mode or "field" in mode else "arrays.npz")
    data = bytearray(target.read_bytes())
    record = json.loads((dest / "run.json").read_text())
    if mode.startswith("flip"):
        i = min(int(where * len(data)), len(data) - 1)
        data[i] ^= 1 << bit
        target.write_bytes(bytes(data))
    elif mode.startswith("truncate"):
        target.write_bytes(bytes(data[: int(where * len(data))]))
    elif mode.startswith("field"):
        record[field] = value
        if mode == "field-resigned":
            record["sha256"] = runs._checksum(record, (dest / "arrays.npz").read_bytes())
        (dest / "run.json").write_text(json.dumps(record))
    elif mode == "array-resigned":
        with np.load(dest / "arrays.npz") as z:
            arrays = {k: z[k] for k in z.files}
        a = arrays[array]
        arrays[array] = {"nan": np.full_like(a, np.nan, dtype=float), "short": a[:-1], "float32": a.astype(np.float32),
                         "2d": a[None, :], "text": np.array(["x"] * a.size), "empty": a[:0]}[replacement]
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        (dest / "arrays.npz").write_bytes(buf.getvalue())
        record["sha256"] = runs._checksum(record, buf.getvalue())
        (dest / "run.json").write_text(json.dumps(record))
    else:
        (dest / ("run.json" if where < 0.5 else "arrays.npz")).unlink()

    def same_or_refused(loaded):  # a damaged run that still loads must be the saved one, bit for bit
        same = all(np.array_equal(loaded.history.metrics[k], hist.metrics[k]) for k in hist.metrics)
        same = same and np.array_equal(loaded.history.policy.params, hist.policy.params)
        return None if same else "a damaged run that loaded with different numbers"
    call("runs.load_run", runs.load_run, dest, check=same_or_refused, names=("path", "saved run", "run.json"))
    from toyfdiv.__main__ import main

    def cli_show(path):
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(["show", str(path), "--no-figures"])
        text = err.getvalue()
        if code not in (0, 1) or "Traceback" in text or (code == 1 and len(text.strip().splitlines()) != 1):
            raise RuntimeError(f"exit code {code}, stderr {text!r}")
        return code
    call("CLI show", cli_show, dest)


CLI_VALUES = st.one_of(st.sampled_from(["0", "-1", "1", "2", "nan", "inf", "-inf", "1e3", "1e308", "0.5", "x", "",
                                        "1,2", "0,1", "js", "all", "abc"]), st.text(max_size=6))


@examples(60)
@given(command=st.sampled_from(["compare", "sweep", "estimators", "run", "show"]),
       options=st.lists(st.tuples(st.sampled_from(["--lr", "--beta", "--steps", "--seed", "--epsilon", "--betas",
                                                     "--seeds", "--samples", "--n", "--trials", "--workers",
                                                     "--divergences", "--task", "--kind", "--bogus"]), CLI_VALUES),
                        max_size=3))
def test_fuzz_cli_arguments(command, options):
    """The parser: every value is accepted or refused as a usage error (SystemExit 2), never a traceback."""
    from toyfdiv.__main__ import build_parser

    argv = [command] + [x for pair in options for x in pair] + (["x"] if command in ("run", "show") else [])

    def parse(argv):
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                return build_parser().parse_args(argv)
        except SystemExit as exit_:
            if exit_.code != 2 or "usage:" not in err.getvalue():
                raise RuntimeError(f"exit {exit_.code}: {err.getvalue()!r}") from None
            raise ValueError(f"argv={argv!r} is a usage error (exit 2)") from None
    call("CLI arguments", parse, argv)


# ---------------------------------------------------------------------------- limits and counts
def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + MEMORY_BOUND
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    labels = sorted({label for label, _ in TALLY})
    rows = {label: {kind: TALLY[label, kind] for kind in ("clean", "clear", "other")} for label in labels}
    total = {kind: sum(r[kind] for r in rows.values()) for kind in ("clean", "clear", "other")}
    total["calls"] = sum(total.values())
    print(f"\nfuzz ({'long' if LONG else 'ci'} profile): {total['calls']} calls, {total['clean']} clean, "
          f"{total['clear']} clear errors, {total['other']} anything else")
    for label, r in rows.items():
        print(f"  {label:<36} clean {r['clean']:>6}  clear {r['clear']:>6}  other {r['other']:>3}")
    path = os.environ.get("TOYFDIV_FUZZ_REPORT")
    if path:
        Path(path).write_text(json.dumps({"profile": "long" if LONG else "ci", "total": total, "per_call": rows},
                                         indent=2))


# ---------------------------------------------------------------------------- RL as practised, beyond DPO, diversity
# The public functions of issues 16 and 17 join the fuzz test: names, group shapes, ε, k.
from toyfdiv import diversity, rl  # noqa: E402  (grouped with the targets that use them)
from toyfdiv.feedback import chipo, ipo, kto  # noqa: E402

RL_NAMES = st.one_of(st.sampled_from([*rl.ADVANTAGES, "ppo", "GRPO", "", "grpo "]), JUNK)


@examples(40)
@given(g=st.integers(0, 5), rows=st.integers(1, 3), method=RL_NAMES, eps=st.one_of(st.sampled_from([1e-4, 0.0, -1.0]), SCALARS),
       data=st.data())
def test_fuzz_rl(g, rows, method, eps, data):
    rewards = data.draw(st.one_of(st.lists(st.lists(st.one_of(st.floats(-1e3, 1e3), EXTREME), min_size=g, max_size=g),
                                           min_size=rows, max_size=rows), JUNK))
    call("rl.group_advantages", rl.group_advantages, rewards, method, eps=eps, check=finite)
    p = data.draw(st.one_of(st.floats(0, 1), SCALARS))
    call("rl.effective_weight", rl.effective_weight, p, data.draw(st.one_of(st.integers(-1, 70), SCALARS)),
         data.draw(st.one_of(st.sampled_from(["grpo", "rloo", "dr_grpo"]), RL_NAMES)), check=no_nan)
    space = SMALL_SPACES[0]
    pol = AutoregressivePolicy(space, seed=0)
    log_ref = data.draw(maybe_bad(log_probs(space.size, zeros=False), st.one_of(vectors(space.size), JUNK)))
    call("rl.expected_kl_gradient", rl.expected_kl_gradient, pol, log_ref,
         data.draw(st.one_of(st.sampled_from(list(rl.ESTIMATORS)), JUNK, st.just("k4"))),
         data.draw(st.one_of(st.sampled_from(list(rl.PLACEMENTS)), JUNK, st.just("both"))),
         data.draw(st.one_of(st.sampled_from(list(rl.LEVELS)), JUNK, st.just("batch"))), check=finite)


@examples(40)
@given(n=st.integers(1, 6), data=st.data())
def test_fuzz_diversity_and_preference_optima(n, data):
    lp = data.draw(maybe_bad(log_probs(n), st.one_of(vectors(n), JUNK)))
    correct = data.draw(st.one_of(st.lists(st.booleans(), min_size=n, max_size=n), JUNK))
    k = data.draw(st.one_of(st.integers(-1, 10**6), SCALARS))
    call("diversity.pass_at_k_policy", diversity.pass_at_k_policy, lp, correct, k,
         check=lambda v: finite(v) or (None if np.all((np.asarray(v) >= -1e-12) & (np.asarray(v) <= 1 + 1e-12)) else "outside [0, 1]"))
    call("diversity.expected_distinct_correct", diversity.expected_distinct_correct, lp, correct, k, check=finite)
    ref = data.draw(maybe_bad(log_probs(n, zeros=False), JUNK))
    reward = data.draw(maybe_bad(vectors(n, st.one_of(EXTREME, st.floats(-1e6, 1e6))), JUNK))
    beta = data.draw(st.one_of(st.sampled_from([1e-6, 1e-3, 1.0, 1e3]), SCALARS))
    call("diversity.regularised_target", diversity.regularised_target, ref, reward, beta,
         data.draw(st.one_of(st.sampled_from(["reverse_kl", "forward_kl", "js", "tv"]), NAMES)), check=normalised)
    call("chipo.chipo_optimum", chipo.chipo_optimum, ref, reward, beta, check=normalised)
    win = data.draw(maybe_bad(vectors(n, st.floats(0, 1)), JUNK))
    call("ipo.ipo_optimum", ipo.ipo_optimum, ref, win, beta, check=normalised)
    call("kto.kto_reference_point", kto.kto_reference_point, lp, ref, check=no_nan)


from toyfdiv import rl_tasks  # noqa: E402

RL_TASK = rl_tasks.prompted((0.1, 0.6), vocab=2, length=2)  # 2 prompts, N = 7: exact expectations are cheap


@examples(25)
@given(name=st.one_of(st.sampled_from(list(rl.PRESETS)), RL_NAMES), beta=st.one_of(st.sampled_from([0.0, 0.1, 1.0]), SCALARS),
       epochs=st.one_of(st.integers(-1, 3), JUNK), clip=st.one_of(st.sampled_from([None, 0.2, 0.0, 1.0]), SCALARS),
       G=st.one_of(st.integers(-1, 4), st.sampled_from([10**6, 2**70]), JUNK),
       mode=st.one_of(st.sampled_from(list(rl.MODES)), JUNK), trials=st.one_of(st.integers(-1, 200), JUNK),
       data=st.data())
def test_fuzz_rl_algorithms(name, beta, epochs, clip, G, mode, trials, data):
    """Presets with hostile parts, expected and sampled updates, fixed points and closed forms of rl."""
    alg = call("rl.preset", rl.preset, name, names=("beta", "epochs", "clip_low", "clip_high"),
               **{k: v for k, v in (("beta", beta), ("epochs", epochs), ("clip_low", clip), ("clip_high", clip))
                  if data.draw(st.booleans())})
    task = call("rl_tasks.prompted", rl_tasks.prompted, data.draw(maybe_bad(st.just((0.1, 0.6)),
                                                                            st.one_of(vectors(2), JUNK))),
                reward=data.draw(maybe_bad(st.sampled_from(rl_tasks.REWARDS), st.one_of(st.text(max_size=6), JUNK))),
                vocab=2, length=2, check=lambda t: normalised(t.log_a[0]))
    if alg is None or task is None:
        return
    pol = AutoregressivePolicy(RL_TASK.space, seed=0) if data.draw(st.booleans()) else data.draw(st.sampled_from([None, "x", 3]))
    upd = call("rl.expected_update", rl.expected_update, alg, pol, RL_TASK, G, mode=mode, trials=trials,
               rng=np.random.default_rng(0), check=lambda u: finite(u.gradient))
    if upd is not None and pol is not None:
        batch = call("rl.sample_batch", rl.sample_batch, alg, pol, RL_TASK, G, np.random.default_rng(1))
        if batch is not None:
            call("rl.sampled_update", rl.sampled_update, alg, pol, RL_TASK, batch, check=finite)
    call("rl.fixed_point", rl.fixed_point, alg, RL_TASK, data.draw(st.one_of(st.integers(2, 3), SCALARS)),
         steps=data.draw(st.one_of(st.integers(0, 20), JUNK)), lr=data.draw(st.one_of(st.sampled_from([0.1, 1.0]), SCALARS)),
         check=lambda fp: normalised(fp.policy.log_probs()) if hasattr(fp, "policy") else None)
    p_a = data.draw(st.one_of(st.floats(0, 1), SCALARS))
    call("rl.grpo_success_recursion", rl.grpo_success_recursion, p_a, data.draw(st.one_of(st.floats(1e-3, 10), SCALARS)),
         data.draw(st.one_of(st.integers(-1, 70), SCALARS)), check=no_nan)
    log_a = data.draw(maybe_bad(log_probs(4, zeros=False), st.one_of(vectors(4), JUNK)))
    reward = data.draw(maybe_bad(vectors(4, st.one_of(EXTREME, st.floats(-1e6, 1e6))), JUNK))
    for fn in (rl.rlhf_target, rl.k3_target):
        call(f"rl.{fn.__name__}", fn, log_a, reward, data.draw(st.one_of(st.sampled_from([1e-6, 0.5, 1e3]), SCALARS)),
             check=normalised)
    call("rl.kl_values", rl.kl_values, AutoregressivePolicy(SMALL_SPACES[0], seed=0),
         data.draw(maybe_bad(log_probs(SMALL_SPACES[0].size, zeros=False), JUNK)),
         data.draw(st.one_of(st.sampled_from(list(rl.ESTIMATORS)), JUNK)),
         data.draw(st.one_of(st.sampled_from(list(rl.LEVELS)), JUNK)), check=no_nan)


# ---------------------------------------------------------------------------- pair kernel, collapse, GKD, KTO at β = 1
from toyfdiv import claims, collapse, distill  # noqa: E402
from toyfdiv.feedback import pairs  # noqa: E402


@examples(30)
@given(n=st.integers(1, 5), data=st.data())
def test_fuzz_pair_kernel_and_tv_target(n, data):
    """The shared pair-loss kernel, the Bradley–Terry pair mass, TV's closed form and KTO's fixed point."""
    beta = data.draw(st.one_of(st.sampled_from([1e-6, 0.1, 1.0, 1e3]), SCALARS))
    loss = call("pairs.Logistic", pairs.Logistic, beta, data.draw(st.one_of(st.none(), st.sampled_from([0.5, 0.0]), SCALARS)))
    square = call("pairs.Squared", pairs.Squared, data.draw(st.one_of(st.floats(-5, 5), SCALARS, vectors(n))))
    h = data.draw(maybe_bad(vectors(n, st.one_of(st.floats(-50, 50), EXTREME)), st.one_of(vectors(n + 1), JUNK)))
    idx = st.lists(st.integers(-1, n), min_size=1, max_size=4)
    winners, losers = data.draw(maybe_bad(idx, JUNK)), data.draw(maybe_bad(idx, JUNK))
    for margin in (m for m in (loss, square) if m is not None):
        call("pairs.pair_loss", pairs.pair_loss, margin, h, winners, losers,
             check=lambda out: finite(out[1]) if isinstance(out, tuple) else "not a (loss, gradient) pair")
    log_q = data.draw(maybe_bad(log_probs(n * n), st.one_of(vectors(n * n), JUNK)))
    mass = call("pairs.bt_pair_mass", pairs.bt_pair_mass, data.draw(maybe_bad(vectors(n, st.floats(-1e3, 1e3)), JUNK)),
                np.reshape(log_q, (n, n)) if np.size(log_q) == n * n else log_q, check=finite)
    if loss is not None and mass is not None:
        call("pairs.population_pair_loss", pairs.population_pair_loss, loss, h, mass,
             check=lambda out: no_nan(out[1]))
    ref = data.draw(maybe_bad(log_probs(n, zeros=False), JUNK))
    reward = data.draw(maybe_bad(vectors(n, st.one_of(EXTREME, st.floats(-1e6, 1e6))), JUNK))
    call("diversity.tv_target", diversity.tv_target, ref, reward, beta, check=normalised)
    call("kto.kto_fixed_point", kto.kto_fixed_point, ref, data.draw(maybe_bad(vectors(n, st.floats(0, 1)), JUNK)),
         data.draw(st.one_of(st.sampled_from([0.5, 1.0, 1.5]), SCALARS)),
         check=lambda fp: normalised(fp.log_probs) if hasattr(fp, "log_probs") else None)
    ks = data.draw(st.one_of(st.lists(st.integers(1, 64), min_size=1, max_size=4).map(sorted), JUNK))
    curve = data.draw(st.one_of(vectors(len(ks) if isinstance(ks, list) else 2, st.floats(0, 1)), JUNK))
    call("claims.pass_at_k_crossing", claims.pass_at_k_crossing, ks, curve, data.draw(st.one_of(st.just(curve), JUNK)),
         tol=data.draw(st.one_of(st.just(0.005), SCALARS)))


COLLAPSE_TASK = rl_tasks.prompted((0.1, 0.6), vocab=2, length=2)


@examples(12)
@given(G=st.one_of(st.integers(-1, 4), JUNK), shared=st.booleans(), steps=st.one_of(st.integers(0, 5), JUNK),
       lr=st.one_of(st.sampled_from([0.1, 1.0]), SCALARS), data=st.data())
def test_fuzz_collapse_and_gkd(G, shared, steps, lr, data):
    """Shared-parameter RL fixed points, pass@k averages over prompts, and GKD through the one loop."""
    theta = data.draw(st.one_of(st.none(), vectors(3), JUNK, st.just(np.full(99, 1e300))))
    call("collapse.SharedAdapter", collapse.SharedAdapter, COLLAPSE_TASK.space,
         data.draw(maybe_bad(st.just(COLLAPSE_TASK), JUNK)), theta)
    alg = rl.preset(data.draw(st.sampled_from(["grpo", "reinforce", "rloo"])), beta=0.1)
    call("collapse.rl_fixed_point", _quiet(collapse.rl_fixed_point), alg, COLLAPSE_TASK, G, shared=shared, steps=steps, lr=lr,
         check=lambda fp: finite(fp.log_pi) if hasattr(fp, "log_pi") else None)
    log_pi = data.draw(maybe_bad(st.just(COLLAPSE_TASK.log_a), st.one_of(vectors(3), JUNK)))
    ks = data.draw(st.one_of(st.lists(st.integers(1, 10**6), min_size=1, max_size=3), st.sampled_from([[0], [10**400]]),
                             JUNK))
    for fn in (collapse.average_pass_at_k, collapse.average_distinct_correct):
        call(f"collapse.{fn.__name__}", fn, log_pi, COLLAPSE_TASK, ks, check=finite)
    space = SequenceSpace(["a", "b"], 2)
    student, teacher = TabularPolicy(space, seed=0), AutoregressivePolicy(space, seed=1, init_scale=1.0)
    call("distill.gkd_train", distill.gkd_train, data.draw(maybe_bad(st.just(student), JUNK)), teacher,
         data.draw(st.one_of(st.floats(0, 1), SCALARS)), data.draw(st.one_of(st.floats(0, 1), SCALARS)), steps=steps,
         lr=lr, names=("step", "lr", "learning rate"),
         check=lambda out: normalised(out[0].log_probs()) if isinstance(out, tuple) else "not (student, ‖∇‖∞)")


# ---------------------------------------------------------------------------- rl: batched one-token runs, DAPO, GSPO, REINFORCE++
from toyfdiv.rl import batchnorm, batched, dapo  # noqa: E402
from toyfdiv.rl.shared import PromptedTinyLM  # noqa: E402

PROBS = st.one_of(st.floats(0, 1), SCALARS)


@examples(30)
@given(s=st.integers(1, 3), n=st.integers(1, 4), G=st.one_of(st.integers(-1, 9), st.sampled_from([10**6, 2**70]), JUNK),
       data=st.data())
def test_fuzz_rl_parts(s, n, G, data):
    """The batched one-token helpers, the clip rule, DAPO's parts, GSPO's ratios and REINFORCE++'s weights."""
    rows = data.draw(maybe_bad(st.lists(log_probs(n), min_size=s, max_size=s).map(np.array), st.one_of(vectors(n), JUNK)))
    k = data.draw(st.one_of(st.integers(-1, 50), st.sampled_from([10**12]), JUNK))
    idx = call("batched.sample_rows", batched.sample_rows, rows, k, np.random.default_rng(0))
    if idx is not None:
        w = data.draw(maybe_bad(st.just(np.ones(idx.shape)), JUNK))
        call("batched.response_masses", batched.response_masses, idx, w, data.draw(maybe_bad(st.just(n), JUNK)),
             check=finite)
    eps = st.one_of(st.sampled_from([None, 0.2, 0.28]), SCALARS)
    m = data.draw(maybe_bad(vectors(n, st.floats(-5, 5)), JUNK))
    call("batched.clipped_logit_gradient", batched.clipped_logit_gradient, rows, rows, m, m, data.draw(eps),
         data.draw(eps), check=finite)
    rho = data.draw(maybe_bad(vectors(n, st.one_of(st.floats(0, 10), EXTREME)), JUNK))
    call("rl.clip_weights", rl.clip_weights, rho, m, m, data.draw(eps), data.draw(eps), check=no_nan)
    lengths = data.draw(maybe_bad(st.lists(st.integers(0, 8), min_size=1, max_size=4), JUNK))
    call("dapo.overlong_penalty", dapo.overlong_penalty, lengths, data.draw(st.one_of(st.integers(-1, 8), SCALARS)),
         data.draw(st.one_of(st.integers(-1, 8), SCALARS)), check=finite)
    p = data.draw(st.one_of(PROBS, vectors(2, st.floats(0, 1))))
    call("dapo.dynamic_sampling_weight", dapo.dynamic_sampling_weight, p, G, check=no_nan)
    pi = data.draw(maybe_bad(log_probs(n).map(np.exp), JUNK))
    call("dapo.kept_probability", dapo.kept_probability, pi, data.draw(maybe_bad(vectors(n, st.sampled_from([0.0, 1.0])),
                                                                                   JUNK)), G, check=finite)
    call("batchnorm.class_counts", batchnorm.class_counts, data.draw(maybe_bad(log_probs(2).map(np.exp), JUNK)),
         data.draw(st.one_of(st.integers(-1, 6), SCALARS)), check=finite)
    call("batchnorm.batch_weights", batchnorm.batch_weights, data.draw(maybe_bad(vectors(2, st.floats(0, 1)), JUNK)),
         data.draw(st.one_of(st.integers(-1, 5), SCALARS)), check=finite)
    call("rl.reinforce_pp_success", rl.reinforce_pp_success, data.draw(maybe_bad(vectors(2, st.floats(0.01, 0.99)), JUNK)),
         data.draw(st.one_of(st.sampled_from([0.1, 1.0]), SCALARS)), data.draw(st.one_of(st.integers(-1, 5), SCALARS)),
         iterations=data.draw(st.one_of(st.integers(0, 20), JUNK)), check=no_nan)
    space = SMALL_SPACES[1]
    pol = AutoregressivePolicy(space, seed=0)
    old = data.draw(maybe_bad(st.just(AutoregressivePolicy(space, seed=1)), JUNK))
    call("rl.sequence_ratios", rl.sequence_ratios, pol, old, check=finite)
    mm = data.draw(maybe_bad(vectors(space.size, st.floats(-1, 1)), JUNK))
    call("rl.sequence_clipped_gradient", rl.sequence_clipped_gradient, pol, old, mm, mm, data.draw(eps), data.draw(eps),
         check=finite)
    call("rl.PromptedTinyLM", PromptedTinyLM, data.draw(maybe_bad(st.just(space), JUNK)),
         data.draw(st.one_of(st.integers(-1, 3), SCALARS)), TinyLMConfig(n_embd=2, n_hidden=2),
         check=lambda p: normalised(p.log_probs()[0]) if hasattr(p, "log_probs") else None)
    call("rl.Algorithm", rl.Algorithm, "x", advantage="grpo", overlong=data.draw(st.one_of(st.none(), st.tuples(
        st.integers(-1, 5), st.integers(-1, 5)), JUNK)), dynamic_sampling=data.draw(st.one_of(st.booleans(), JUNK)),
         ratio_level=data.draw(st.one_of(st.sampled_from(["token", "sequence"]), JUNK)))
