"""The `hparam` ideator: plain hyper-parameter search over an environment's knobs.

A baseline for "does my LLM beat tuning?": values for the manifest's `knobs` become ordinary
candidates — an idea text naming the values and SEARCH/REPLACE edits that set them — run and
scored like any LLM idea. It starts where a person tuning by hand would: the baseline with
one knob moved at a time (x3 and /3 on a log scale, half-way to the range's end otherwise,
the next choice); then Optuna's TPE takes over, its study rebuilt from the archive's trials
each time, so resuming a search resumes the tuning too.

The same knobs make an LLM-free implementer (`values_from_text`): an idea written as
assignments, "lr=3e-3 warmup_steps=50", becomes the edits that set them. The ideator-RL
trainer uses it to run a policy's ideas offline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from environments import Environment
from environments.manifest import Knob, knob_regex


@dataclass(frozen=True)
class Proposal:
    values: dict[str, Any]  # knob name -> value
    idea: str  # the idea text stored in the archive
    edits: str  # SEARCH/REPLACE blocks that set the values


def _distribution(knob: Knob) -> Any:
    import optuna.distributions as d

    if knob.type == "float":
        assert knob.range is not None
        return d.FloatDistribution(knob.range[0], knob.range[1], log=knob.log)
    if knob.type == "int":
        assert knob.range is not None
        return d.IntDistribution(int(knob.range[0]), int(knob.range[1]), log=knob.log)
    if knob.type == "bool":
        return d.CategoricalDistribution([False, True])
    assert knob.choices is not None
    return d.CategoricalDistribution(list(knob.choices))


def knobs_for(env: Environment, scale: str) -> list[Knob]:
    """The knobs that matter at `scale`; a ValueError says what to do when there are none."""
    knobs = [k for k in env.manifest.knobs if k.scales is None or scale in k.scales]
    if not knobs:
        raise ValueError(
            f"{env.name} declares no knobs for scale {scale!r}: the hparam ideator needs "
            "[[knobs]] in env.toml (or use an LLM ideator)"
        )
    return knobs


def literal(knob: Knob, value: Any) -> str:
    """The value as it is written in code."""
    if knob.type == "bool":
        return "True" if value else "False"
    if knob.type == "int":
        return str(int(value))
    if knob.type == "float":
        return f"{float(value):.4g}"
    return str(value)  # a choice: the knob's pattern carries any quotes around it


def _as_written(knob: Knob, value: Any) -> Any:
    if knob.type != "float":
        return value
    assert knob.range is not None
    return min(max(float(literal(knob, value)), knob.range[0]), knob.range[1])


def edits_for(env: Environment, values: dict[str, Any]) -> str:
    """SEARCH/REPLACE blocks setting each knob's line in the baseline repo to its value."""
    blocks = []
    for knob in env.manifest.knobs:
        if knob.name not in values:
            continue
        text = (env.repo / knob.file).read_text()
        match = knob_regex(knob).search(text)
        if match is None:  # the manifest loader checks this; a changed repo would break it
            raise ValueError(f"knob {knob.name}: pattern {knob.pattern!r} not in {knob.file}")
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line = text[line_start : line_end if line_end != -1 else len(text)]
        new = line.replace(
            match.group(0), knob.pattern.replace("{value}", literal(knob, values[knob.name]))
        )
        blocks.append(f"{knob.file}\n<<<<<<< SEARCH\n{line}\n=======\n{new}\n>>>>>>> REPLACE\n")
    return "\n".join(blocks)


def idea_text(values: dict[str, Any], knobs: list[Knob]) -> str:
    shown = ", ".join(f"{k.name}={literal(k, values[k.name])}" for k in knobs if k.name in values)
    return f"Hyper-parameters: {shown}"


def _moved(knob: Knob, up: bool) -> Any:
    """The knob's default moved one step up or down, within its range."""
    d = knob.default
    if knob.type == "bool":
        return not d if up else d
    if knob.type == "choice":
        assert knob.choices is not None
        i = knob.choices.index(d) if d in knob.choices else 0
        return knob.choices[(i + (1 if up else -1)) % len(knob.choices)]
    assert knob.range is not None
    lo, hi = knob.range
    x = float(d)
    if knob.log and x > 0:
        x = x * 3 if up else x / 3
    else:
        x = x + (hi - x) / 2 if up else x - (x - lo) / 2
    x = min(max(x, lo), hi)
    return round(x) if knob.type == "int" else x


def one_knob_moves(knobs: list[Knob]) -> list[dict[str, Any]]:
    """The baseline with one knob moved at a time: every knob up, then every knob down."""
    defaults = {k.name: k.default for k in knobs}
    moves = []
    for up in (True, False):
        for k in knobs:
            value = _as_written(k, _moved(k, up))
            move = {**defaults, k.name: value}
            if value != k.default and move not in moves:
                moves.append(move)
    return moves


def propose(
    env: Environment,
    scale: str,
    history: list[tuple[dict[str, Any], float | None]],
    n: int,
    seed: int = 0,
    maximize: bool = True,
    pruned: Sequence[dict[str, Any]] = (),
) -> list[Proposal]:
    """`n` new proposals from TPE, given finished trials (values, reward or None if failed)
    and the values of trials stopped early (a search's --screen did not promote them: TPE
    counts them below every completed trial)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    knobs = knobs_for(env, scale)
    dists = {k.name: _distribution(k) for k in knobs}
    # Seeded by how much is known, so a resumed search proposes what the first one would.
    sampler = optuna.samplers.TPESampler(seed=seed + len(history), n_startup_trials=8)
    study = optuna.create_study(direction="maximize" if maximize else "minimize", sampler=sampler)
    for values, reward in history:
        params = {k: v for k, v in values.items() if k in dists}
        if len(params) != len(dists):
            continue
        state = (
            optuna.trial.TrialState.COMPLETE if reward is not None else optuna.trial.TrialState.FAIL
        )
        study.add_trial(
            optuna.trial.create_trial(params=params, distributions=dists, value=reward, state=state)
        )
    for values in pruned:
        params = {k: v for k, v in values.items() if k in dists}
        if len(params) == len(dists):
            study.add_trial(
                optuna.trial.create_trial(
                    params=params, distributions=dists, state=optuna.trial.TrialState.PRUNED
                )
            )
    proposals = []
    by_name = {k.name: k for k in knobs}
    tried = [values for values, _ in history] + list(pruned)
    first = [m for m in one_knob_moves(knobs) if m not in tried]
    for _ in range(n):
        if first:
            values = first.pop(0)
            proposals.append(Proposal(values, idea_text(values, knobs), edits_for(env, values)))
            continue
        trial = study.ask(dists)
        # The values as written in code, so the archive's history is exactly what ran.
        values = {name: _as_written(by_name[name], v) for name, v in trial.params.items()}
        proposals.append(Proposal(values, idea_text(values, knobs), edits_for(env, values)))
        # Pending trials count for TPE's next suggestion only once told; mark them failed
        # here so one batch spreads out instead of repeating itself.
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return proposals


# -- the `hparam` implementer: ideas written as assignments ("lr=3e-3 warmup_steps=50") ------

_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*[=:]\s*([^\s,;]+)")


class HparamIdeaError(ValueError):
    """An idea the hparam implementer cannot turn into knob values; the text says why."""


def _knob_named(name: str, knobs: list[Knob]) -> Knob | None:
    """The knob called `name`, or the one knob whose name starts with it (warmup: warmup_steps)."""
    exact = [k for k in knobs if k.name == name]
    if exact:
        return exact[0]
    prefixed = [k for k in knobs if k.name.startswith(name)]
    return prefixed[0] if len(prefixed) == 1 else None


def _parse_value(knob: Knob, raw: str) -> Any:
    raw = raw.strip().strip("\"'").rstrip(".")
    if knob.type == "bool":
        if raw.lower() in ("true", "1", "yes", "on"):
            return True
        if raw.lower() in ("false", "0", "no", "off"):
            return False
        raise HparamIdeaError(f"{knob.name}={raw} is not a boolean")
    if knob.type == "choice":
        assert knob.choices is not None
        for choice in knob.choices:
            if str(choice) == raw:
                return choice
        raise HparamIdeaError(f"{knob.name}={raw} is not one of {knob.choices}")
    try:
        value: float = float(raw)
    except ValueError:
        raise HparamIdeaError(f"{knob.name}={raw} is not a number") from None
    assert knob.range is not None
    lo, hi = knob.range
    if not lo <= value <= hi:
        raise HparamIdeaError(f"{knob.name}={raw} is outside its range [{lo:g}, {hi:g}]")
    if knob.type == "int":
        if value != int(value):
            raise HparamIdeaError(f"{knob.name}={raw} is not a whole number")
        return int(value)
    return value


def values_from_text(env: Environment, scale: str, text: str) -> dict[str, Any]:
    """The knob values an idea assigns, e.g. "lr=3e-3 warmup=50"; unnamed knobs keep defaults.

    Raises HparamIdeaError (one line, what is wrong) for unknown knobs, values outside a knob's
    range, or an idea that assigns nothing."""
    knobs = knobs_for(env, scale)
    values: dict[str, Any] = {}
    for name, raw in _ASSIGNMENT.findall(text):
        knob = _knob_named(name.lower(), knobs)
        if knob is None:
            names = ", ".join(k.name for k in knobs)
            raise HparamIdeaError(f"{name!r} is not a knob of {env.name} at {scale} ({names})")
        if knob.name in values:
            raise HparamIdeaError(f"{knob.name} is set twice")
        values[knob.name] = _as_written(knob, _parse_value(knob, raw))
    if not values:
        raise HparamIdeaError("the idea sets no knob: write it as NAME=VALUE, e.g. lr=3e-3")
    return values
