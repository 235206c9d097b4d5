"""The execution reward: each sampled idea is implemented, run on the scheduler, and scored.

`ExecutionReward` is a TRL reward function. For one batch it extracts the ideas (thinking kept
out), looks each up in the execution cache (an identical idea never runs twice), runs the rest
at once through one shared backend (its slots bound the parallelism), waits, and returns the
shaped rewards. Every sample, its idea, run and reward, and the step's collapse instruments are
written to the store before the rewards are returned.

TRL calls reward functions synchronously; the runs need one long-lived event loop (the
backend's scheduler belongs to it), so the loop runs in a thread of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import statistics
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from agent.dedup import Embed
from agent.executor import RunRequest, run_baseline, run_idea
from agent.ideator_rl import shaping
from agent.ideator_rl.config import TrainIdeatorConfig
from agent.ideator_rl.extract import Extracted, completion_text, extract_idea
from agent.ideator_rl.records import CachedResult, Records, SampleRecord
from agent.knobs import HparamIdeaError, edits_for, values_from_text
from agent.llm import LLMClient
from agent.store import Store, training_source
from runner.backends import Backend
from runner.workspace import BaselineRepo

T = TypeVar("T")
RETRYABLE = {"infra_error", "cancelled"}  # never cached: the next identical idea runs again


@dataclass(frozen=True)
class Outcome:
    result: CachedResult
    cached: bool


class ExecutionReward:
    """Reward function for `GRPOTrainer`: one float per completion, from real executions."""

    __name__ = "execution"  # TRL names its logged reward columns after this

    def __init__(
        self,
        *,
        config: TrainIdeatorConfig,
        req: RunRequest,
        store: Store,
        records: Records,
        training_id: str,
        baseline: float | None,
        client: LLMClient | None = None,
        count_tokens: Callable[[str], int] | None = None,
        embed: Embed | None = None,
        progress: Callable[[str], None] = lambda _: None,
    ) -> None:
        if config.implementer != "hparam" and client is None:
            raise ValueError("an LLM implementer needs its client")
        self.config, self.req, self.store, self.records = config, req, store, records
        self.training_id, self.baseline, self.client = training_id, baseline, client
        self.count_tokens = count_tokens or (lambda text: len(text.split()))
        self.embed, self.progress = embed, progress
        self.baseline_sha = BaselineRepo(req.run_dir, req.env).baseline_sha
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._backend: Backend | None = None
        # SQLite connections belong to their thread: the loop's runs write through their own.
        self._loop_store, self._loop_records = self._on_loop(self._open_store())

    async def _open_store(self) -> tuple[Store, Records]:
        store = Store(self.req.run_dir)
        return store, Records(store)

    # -- TRL's entry point --------------------------------------------------------------

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        trainer_state: Any = None,
        log_metric: Callable[[str, float], None] | None = None,
        **_: Any,
    ) -> list[float]:
        step = (trainer_state.global_step if trainer_state is not None else 0) + 1
        size = self.config.group_size
        groups = [
            list(range(g, min(g + size, len(completions))))
            for g in range(0, len(completions), size)
        ]
        tokens = (
            [len(ids) for ids in completion_ids]
            if completion_ids is not None
            else [self.count_tokens(completion_text(c)) for c in completions]
        )
        rewards, instruments = self.score(step, list(completions), groups, tokens)
        if log_metric is not None:
            for name, value in instruments.items():
                log_metric(f"ideator/{name}", float(value))
        return rewards

    # -- one batch ------------------------------------------------------------------------

    def score(
        self,
        step: int,
        completions: list[Any],
        groups: list[list[int]],
        completion_tokens: list[int],
    ) -> tuple[list[float], dict[str, float]]:
        t0 = time.monotonic()
        cfg = self.config
        extracted = [extract_idea(c) for c in completions]
        ideas = [e.idea for e in extracted]
        self.progress(f"step {step}: running {len({i for i in ideas if i})} distinct ideas")
        outcomes = self._on_loop(self._outcomes(extracted))
        execution = [
            o.result.reward
            if o.result.status == "succeeded" and o.result.reward is not None
            else cfg.failure_reward
            for o in outcomes
        ]
        in_group, in_history = shaping.repeat_shares(
            ideas,
            groups,
            self.records.recent_ideas(self.training_id, step, cfg.diversity_history),
            self.embed,
        )
        is_novel: list[bool] = []
        if cfg.novelty_weight:
            archive = self.records.archive_ideas(
                self.req.env.repo_hash, self.req.scale, self.training_id
            )
            is_novel = shaping.novel(ideas, archive, self.embed)
        shaped = shaping.shape(
            execution,
            groups,
            mode=cfg.reward,
            baseline=self.baseline,
            succeeded=[o.result.status == "succeeded" for o in outcomes],
            diversity_weight=cfg.diversity_weight,
            in_group=in_group,
            in_history=in_history,
            novelty_weight=cfg.novelty_weight,
            is_novel=is_novel,
            length=shaping.length_bonuses(completion_tokens, cfg.length_bonus, cfg.length_cap),
        )
        thinking = [self.count_tokens(e.thinking) if e.thinking else 0 for e in extracted]
        group_of = {i: g for g, members in enumerate(groups) for i in members}
        samples = []
        for i, (o, sh) in enumerate(zip(outcomes, shaped, strict=True)):
            parts = {
                "transformed": sh.transformed,
                "diversity_penalty": sh.diversity_penalty,
                "novelty_bonus": sh.novelty_bonus,
                "length_bonus": sh.length_bonus,
                "repeats_in_group": in_group[i],
                "repeats_in_history": in_history[i],
            }
            samples.append(
                SampleRecord(
                    i,
                    group_of[i],
                    completion_text(completions[i]),
                    thinking[i],
                    completion_tokens[i],
                    ideas[i],
                    o.result.idea_id or None,
                    o.result.status,
                    o.result.reason,
                    o.cached,
                    execution[i],
                    sh.reward,
                    parts,
                )
            )
        instruments = _instruments(samples, ideas, execution, groups, self.embed)
        instruments["seconds"] = time.monotonic() - t0
        self.records.record_step(self.training_id, step, samples, instruments)
        self.progress(
            f"step {step}: mean reward {instruments['mean_reward']:.4g} "
            f"(max {instruments['max_reward']:.4g}), {instruments['execution_rate']:.0%} ran, "
            f"{instruments['executed']:.0f} executed, {instruments['cache_hits']:.0f} cached, "
            f"top-2 clusters {instruments['top2_cluster_share']:.0%}"
        )
        return [s.reward for s in shaped], instruments

    # -- executions -----------------------------------------------------------------------

    def run_ideas(self, ideas: list[str], baseline_seeds: Sequence[int] = ()) -> list[CachedResult]:
        """Each idea's result at this reward's budget, run or from the cache, in order; no
        step is recorded (agent/ideator_rl/measure.py re-runs a training's ideas with it).
        `baseline_seeds`: the baseline runs on these seeds beside them, sharing the slots."""
        extracted = [Extracted(idea, "", None if idea else "no idea") for idea in ideas]

        async def both() -> list[Outcome]:
            if self._backend is None:
                self._backend = self.req.make_backend()
            base = (
                run_baseline(self.req, self._loop_store, baseline_seeds, backend=self._backend)
                if baseline_seeds
                else asyncio.sleep(0)
            )
            outcomes, _ = await asyncio.gather(self._outcomes(extracted), base)
            return outcomes

        return [o.result for o in self._on_loop(both())]

    def _key(self, idea: str) -> str:
        """The idea as the cache knows it: with what decides its result besides the env and
        scale (the implementer, the run's seed and time budget)."""
        how = f"|{self.config.implementer}|seed={self.req.seed}|timeout={self.req.timeout_s}"
        if self.config.implementer == "hparam":
            try:
                values = values_from_text(self.req.env, self.req.scale, idea)
            except HparamIdeaError:
                return "text:" + _canonical_text(idea) + how
            return "hparam:" + json.dumps(values, sort_keys=True) + how
        return "text:" + _canonical_text(idea) + how

    async def _outcomes(self, extracted: list[Extracted]) -> list[Outcome]:
        env, scale = self.req.env, self.req.scale
        keys = [self._key(e.idea) if e.idea else "" for e in extracted]
        todo: dict[str, str] = {}  # key -> the first idea text with it
        known: dict[str, Outcome] = {}
        for key, e in zip(keys, extracted, strict=True):
            if not key or key in known or key in todo:
                continue
            hit = self._loop_records.cached(key, env.repo_hash, scale)
            if hit is not None:
                known[key] = Outcome(hit, cached=True)
            else:
                todo[key] = e.idea
        if todo and self._backend is None:
            self._backend = self.req.make_backend()
        results = await asyncio.gather(*(self._execute(k, idea) for k, idea in todo.items()))
        for key, result in zip(todo, results, strict=True):
            known[key] = Outcome(result, cached=False)
        out = []
        seen: set[str] = set()
        for key, e in zip(keys, extracted, strict=True):
            if not key:
                out.append(Outcome(CachedResult("", "no_idea", e.problem, None), cached=False))
                continue
            o = known[key]
            # The first sample with a freshly run idea is the execution; repeats are cache hits.
            out.append(o if key not in seen else Outcome(o.result, cached=True))
            seen.add(key)
        return out

    async def _execute(self, key: str, idea: str) -> CachedResult:
        env, req = self.req.env, self.req
        idea_id = self._loop_store.add_idea(
            idea, env.name, env.repo_hash, req.scale, training_source(self.training_id)
        )
        if self.config.implementer == "hparam":
            try:
                patch: str | None = edits_for(env, values_from_text(env, req.scale, idea))
            except HparamIdeaError as e:
                cand = self._loop_store.add_candidate(idea_id, 0, "hparam", self.baseline_sha)
                self._loop_store.finish_candidate(cand, "rejected", error=str(e))
                result = CachedResult(idea_id, "rejected", str(e), None)
                self._loop_records.cache(key, env.repo_hash, req.scale, result)
                return result
            report = await run_idea(
                idea,
                req,
                self._loop_store,
                patch_text=patch,
                idea_id=idea_id,
                backend=self._backend,
            )
        else:
            report = await run_idea(
                idea,
                req,
                self._loop_store,
                client=self.client,
                idea_id=idea_id,
                backend=self._backend,
            )
        status = str(report.status)
        reward = report.reward if report.succeeded else None
        result = CachedResult(idea_id, status, report.reason, reward)
        if status not in RETRYABLE:
            self._loop_records.cache(key, env.repo_hash, req.scale, result)
        return result

    # -- the event loop thread ------------------------------------------------------------

    def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            # Ctrl-C or a kill: cancel the runs (their rows end `cancelled`), then re-raise.
            future.cancel()
            concurrent.futures.wait([future], timeout=60)
            raise

    def close(self) -> None:
        if self._backend is not None:
            backend, self._backend = self._backend, None
            self._loop.call_soon_threadsafe(backend.close)
        self._loop.call_soon_threadsafe(self._loop_store.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)


def _canonical_text(idea: str) -> str:
    return re.sub(r"\s+", " ", idea.strip().lower())


def _instruments(
    samples: list[SampleRecord],
    ideas: list[str],
    execution: list[float],
    groups: list[list[int]],
    embed: Embed | None,
) -> dict[str, float]:
    """The collapse instruments of one step (README, Training the ideator: what they catch)."""
    n = len(samples)
    distinct = {i for i in ideas if i}
    return {
        "mean_reward": statistics.fmean(execution),
        "max_reward": max(execution),
        "shaped_reward": statistics.fmean(s.reward for s in samples),
        "execution_rate": sum(s.status == "succeeded" for s in samples) / n,
        "no_idea_rate": sum(s.status == "no_idea" for s in samples) / n,
        "top2_cluster_share": shaping.top_cluster_share(ideas, 2, embed),
        "mean_pairwise_similarity": shaping.mean_pairwise_similarity(ideas),
        "distinct_ideas": float(len(distinct)),
        "completion_tokens": statistics.fmean(s.completion_tokens for s in samples),
        "thinking_tokens": statistics.fmean(s.thinking_tokens for s in samples),
        "executed": float(sum(not s.cached and s.status != "no_idea" for s in samples)),
        "cache_hits": float(sum(s.cached for s in samples)),
        # Groups whose rewards are all equal teach GRPO nothing (a policy whose ideas all
        # fail, or that writes one idea only, stops learning).
        "flat_groups": sum(len({samples[i].reward for i in g}) == 1 for g in groups) / len(groups),
    }
