"""Ideators: where a search's ideas come from.

- `PROVIDER:MODEL`: an LLM, prompted with the task and the archive (fresh ideas in epoch 0;
  then exploit — the best ideas with their rewards — and explore — a random sample with
  failures and their reasons), asked in batches with the epoch's earlier ideas to avoid.
- `hparam`: Optuna TPE over the environment's knobs (`agent.knobs`).
- `replay:FILE`: ideas (and optional diffs) from a JSONL file, in order.
- a third party's: a name from the entry-point group "executor.ideators", or
  `package.module:Class[:ARG]`, built from an `IdeatorSetup` (see `make_ideator`).

Every ideator returns `ProposedIdea`s; the search records them before any of them runs.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.knobs import knobs_for, propose
from agent.llm import PROVIDERS, LLMClient
from agent.llm.types import Message
from agent.search.archive import SCREENED_OUT, ArchivedIdea
from agent.search.feedback import ranked_summary
from agent.search.ideas_parse import parse_ideas
from agent.search.ranking import label, ranked
from agent.templating import Prompts
from environments import Environment
from plugins import Registry

# The ideation prompts (jinja2 markdown) live beside this module, in prompts/.
PROMPTS = Prompts(Path(__file__).with_name("prompts"))


@dataclass(frozen=True)
class ProposedIdea:
    text: str
    role: str  # fresh | exploit | explore | hparam | replay
    payload: dict[str, Any] = field(default_factory=dict)  # e.g. {"edits": ...} for patches


@dataclass
class IdeationContext:
    env: Environment
    scale: str
    epoch: int
    history: list[ArchivedIdea]  # every earlier idea of this search, in order
    baseline_reward: float | None
    seed: int = 0
    rank_by: str | None = None  # the metric ideas are ranked by (None: the reward)
    feedback: list[str] = field(default_factory=list)  # metrics shown per earlier idea
    baseline_metrics: dict[str, float] = field(default_factory=dict)  # screening means


class Ideator(Protocol):
    @property
    def name(self) -> str: ...  # recorded with each idea it proposes

    async def propose(self, ctx: IdeationContext, n: int) -> list[ProposedIdea]: ...


def exploit_share(epoch: int, start: float = 0.5, cap: float = 0.8, step: float = 0.1) -> float:
    """The exploit fraction of an epoch's ideas: none in epoch 0, then growing to `cap`."""
    if epoch == 0:
        return 0.0
    return min(cap, start + step * (epoch - 1))


@dataclass
class LLMIdeator:
    client: LLMClient
    batch_size: int = 10
    top_k: int = 5  # best ideas shown to exploit
    sample_k: int = 10  # ideas sampled for explore
    exploit_start: float = 0.5
    exploit_cap: float = 0.8
    prompts: list[str] = field(default_factory=list)  # every prompt sent, for tests and reports

    @property
    def name(self) -> str:
        return f"{self.client.provider}:{self.client.model}"

    async def propose(self, ctx: IdeationContext, n: int) -> list[ProposedIdea]:
        share = exploit_share(ctx.epoch, self.exploit_start, self.exploit_cap)
        scored = [i for i in ctx.history if i.reward is not None and i.status == "succeeded"]
        # A fractional share (one idea at a time, in async mode) is drawn, reproducibly.
        draw = random.Random(f"{ctx.seed}-{ctx.epoch}-{len(ctx.history)}").random()
        n_exploit = int(n * share) + (draw < n * share - int(n * share)) if scored else 0
        plan = [("exploit", n_exploit), ("explore" if ctx.epoch else "fresh", n - n_exploit)]
        out: list[ProposedIdea] = []
        for role, count in plan:
            while count > 0:
                batch = min(count, self.batch_size)
                texts = await self._ask(ctx, role, batch, avoid=[p.text for p in out])
                texts = texts[:batch]
                out.extend(ProposedIdea(t, role) for t in texts)
                count -= len(texts)
        return out

    async def _ask(self, ctx: IdeationContext, role: str, n: int, avoid: list[str]) -> list[str]:
        manifest = ctx.env.manifest
        values = {
            "task": ctx.env.task_text,
            "n": str(n),
            "baseline": "unknown" if ctx.baseline_reward is None else f"{ctx.baseline_reward:.4g}",
            "avoid": _avoid_block(avoid),
        }
        if role == "fresh":
            values.update(metric=manifest.metric.name, direction=manifest.metric.direction)
        elif role == "exploit":
            best = ranked(ctx.history, ctx.rank_by, ctx.env)[: self.top_k]
            values["best"] = "\n".join(_describe(i, ctx.rank_by) for i in best)
            values["ranked"] = ranked_summary(ctx)
            values["rank"] = label(ctx.rank_by)
        else:
            rng = random.Random(f"{ctx.seed}-{ctx.epoch}-{len(avoid)}")
            pool = [i for i in ctx.history if i.status != "duplicate"]
            sample = rng.sample(pool, min(self.sample_k, len(pool)))
            values["sample"] = "\n".join(_describe(i, ctx.rank_by) for i in sample) or "(none yet)"
            values["ranked"] = ranked_summary(ctx)
        prompt = PROMPTS.render(f"ideate_{role}", **values)
        self.prompts.append(prompt)
        answer = await self.client.complete(
            [Message("user", prompt)],
            system=PROMPTS.render("ideate_system"),
            temperature=1.0,
            nonce=f"epoch{ctx.epoch}-{role}-{len(avoid)}",
        )
        return parse_ideas(answer.text)


def _describe(idea: ArchivedIdea, rank_by: str | None = None) -> str:
    if idea.status == "succeeded" and idea.reward is not None:
        also = f", {rank_by} {idea.metrics[rank_by]:.4g}" if rank_by in idea.metrics else ""
        return f"- reward {idea.reward:.4g}{also}: {idea.text}"
    if idea.status == SCREENED_OUT:  # not a failure: a short look ranked it out
        return f"- SCREENED OUT ({idea.reason}): {idea.text}"
    return f"- FAILED ({idea.status}: {failure_summary(idea.reason or idea.status)}): {idea.text}"


def failure_summary(reason: str, limit: int = 300) -> str:
    """The reason's first line and, for a crash, its last (the exception), on one line."""
    lines = [line.strip() for line in reason.splitlines() if line.strip()]
    if not lines:
        return ""
    text = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
    return text[:limit]


def _avoid_block(avoid: list[str]) -> str:
    if not avoid:
        return ""
    listed = "\n".join(f"- {t}" for t in avoid)
    return f"Already proposed this epoch (propose different ones):\n{listed}"


@dataclass
class HparamIdeator:
    name: str = "hparam"

    async def propose(self, ctx: IdeationContext, n: int) -> list[ProposedIdea]:
        mine = [i for i in ctx.history if i.role == "hparam"]
        history = [
            (i.payload.get("values", {}), i.reward if i.status == "succeeded" else None)
            for i in mine
            if i.status != SCREENED_OUT
        ]
        pruned = [i.payload.get("values", {}) for i in mine if i.status == SCREENED_OUT]
        maximize = True  # rewards are higher-is-better by contract
        proposals = propose(
            ctx.env, ctx.scale, history, n, seed=ctx.seed, maximize=maximize, pruned=pruned
        )
        return [
            ProposedIdea(p.idea, "hparam", {"values": p.values, "edits": p.edits})
            for p in proposals
        ]


@dataclass
class ReplayIdeator:
    path: Path
    name: str = "replay"

    def __post_init__(self) -> None:
        self.items = load_replay(self.path)

    async def propose(self, ctx: IdeationContext, n: int) -> list[ProposedIdea]:
        start = len(ctx.history)
        return [
            ProposedIdea(
                item["idea"],
                "replay",
                {"edits": item["code_diff"]} if item.get("code_diff") else {},
            )
            for item in self.items[start : start + n]
        ]


def load_replay(path: Path) -> list[dict[str, Any]]:
    """Lines of {"idea": ..., "code_diff"?: ...}; ValueError naming the first bad line."""
    items = []
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise ValueError(f"replay file {path}: {e.strerror or e}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as e:
            raise ValueError(f"{path}:{n}: not JSON ({e})") from None
        if not isinstance(item, dict) or not str(item.get("idea", "")).strip():
            raise ValueError(f'{path}:{n}: each line needs an "idea" string')
        items.append(item)
    if not items:
        raise ValueError(f"replay file {path} holds no ideas")
    return items


@dataclass(frozen=True)
class IdeatorSetup:
    """What an ideator's factory is given."""

    arg: str  # the text after the name: FILE of `replay:FILE`; "" for a bare name
    env: Environment
    scale: str
    make_client: Callable[[str], LLMClient]  # "PROVIDER:MODEL" -> a client set up for the run


IdeatorFactory = Callable[[IdeatorSetup], Ideator]
# Third parties add ideators under the entry-point group "executor.ideators".
IDEATORS: Registry[IdeatorFactory] = Registry("ideator", "executor.ideators")


@IDEATORS.register("hparam")
def _hparam(setup: IdeatorSetup) -> Ideator:
    if setup.arg:
        raise ValueError(f"the hparam ideator takes no argument, got hparam:{setup.arg}")
    knobs_for(setup.env, setup.scale)  # no knobs at this scale: say so before anything runs
    return HparamIdeator()


@IDEATORS.register("replay")
def _replay(setup: IdeatorSetup) -> Ideator:
    if not setup.arg.strip():
        raise ValueError("the replay ideator needs a file: --ideator replay:FILE")
    return ReplayIdeator(Path(setup.arg))


def make_ideator(
    spec: str, *, env: Environment, scale: str, make_client: Callable[[str], LLMClient]
) -> Ideator:
    """The ideator `--ideator SPEC` names: "hparam", "replay:FILE", "PROVIDER:MODEL", a name
    from an entry point, or "package.module:Class[:ARG]". ValueError (one line) on bad input;
    an LLM spec's errors are make_client's."""
    head = spec.partition(":")[0].strip()
    if head not in IDEATORS and head.lower() in PROVIDERS:
        return LLMIdeator(make_client(spec))
    name, arg = IDEATORS.split(spec)
    if name not in IDEATORS and ":" not in name:
        providers = ", ".join(PROVIDERS.names())
        raise IDEATORS.unknown(name, more=f", PROVIDER:MODEL with PROVIDER one of {providers}")
    return IDEATORS.get(name)(IdeatorSetup(arg, env, scale, make_client))
