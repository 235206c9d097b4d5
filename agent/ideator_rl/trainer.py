"""`executor train-ideator`: GRPO on execution reward, a LoRA adapter on the ideator.

Read top to bottom: find or start the training in the run directory; measure the baseline;
resolve the model (a hub id, a local path, or `tiny`, built here); build the prompt; hand TRL's
`GRPOTrainer` the execution reward and a PEFT LoRA config; train, checkpointing the adapter
every `save_every` steps; on `--resume`, continue from the last complete checkpoint (the
execution cache makes re-done steps nearly free). Generation uses vLLM (colocated) on a GPU when
it is installed, HF `generate` otherwise.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from agent.dedup import local_embedder
from agent.executor import Progress, RunRequest, run_baseline
from agent.ideator_rl.budget import TIMEOUT_KEY, describe, matching_baseline, with_fidelity
from agent.ideator_rl.config import TrainIdeatorConfig
from agent.ideator_rl.execution import ExecutionReward
from agent.ideator_rl.records import Records
from agent.ideator_rl.tiny_ideator import PROMPT_FILE, PROMPTS, build_tiny_ideator
from agent.implementer.context import editable_context
from agent.llm import LLMClient
from agent.results import TrainingResult
from agent.store import Store
from runner.workspace import remove_stale_workspaces

PROMPT_TOKENS = 30_000  # budget for task + code in a hub model's prompt


def training_dir(run_dir: Path, training_id: str) -> Path:
    return run_dir / "ideator" / training_id


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint: trainer_state.json is written last, so a checkpoint a
    kill interrupted (no state file) is skipped."""
    done = [
        p
        for p in folder.glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def use_vllm(mode: str, cuda: bool, installed: bool) -> bool:
    """auto: vLLM when there is a GPU and the package; on: insist (error says what is missing)."""
    if mode == "off":
        return False
    if mode == "on" and not (cuda and installed):
        missing = "a CUDA GPU" if not cuda else "the vllm package (pip install vllm)"
        raise ValueError(f"--vllm on needs {missing}; use --vllm auto or off")
    return cuda and installed


def execution_gpus(
    requested: str | None, detected: list[int], policy_gpu: int, scale_gpus: int
) -> str | None:
    """The GPUs runs may use: --gpus as given; else every GPU but the policy's.

    A GPU scale on a machine whose only GPU trains the policy is a one-line error: the runs
    would fight the policy for memory unless the user says so with --gpus."""
    if requested is not None or not detected:
        return requested
    free = [g for g in detected if g != policy_gpu]
    if scale_gpus and len(free) < scale_gpus:
        raise ValueError(
            f"the runs need {scale_gpus} GPU(s) besides the policy's (GPU {policy_gpu}) and "
            f"this machine has {len(detected)}: give --gpus to share GPUs with the policy, or "
            "train on a machine with more"
        )
    return ",".join(map(str, free)) if free else None


def check_model(model: str) -> None:
    """A local path must hold a model; anything else is a hub id, fetched by transformers."""
    looks_local = model.startswith((".", "/", "~")) or Path(model).exists()
    if looks_local and not (Path(model).expanduser() / "config.json").is_file():
        raise ValueError(
            f"--model {model}: no model there (no config.json); give a hub id, a folder saved "
            "with save_pretrained, or tiny"
        )


def ideator_prompt(env: Any, scale: str, model_path: str) -> str:
    """The prompt a locally built model was trained on, else the full research prompt."""
    saved = Path(model_path) / PROMPT_FILE
    if saved.is_file():
        return saved.read_text()
    return PROMPTS.render(
        "ideator_rl", task=env.task_text, files=editable_context(env, PROMPT_TOKENS)
    ).strip()


def grpo_args(cfg: TrainIdeatorConfig, out: Path, *, cuda: bool, vllm: bool) -> Any:
    from trl import GRPOConfig

    # Checkpointing activations trades speed for memory; ideator completions are short.
    fields = GRPOConfig.__dataclass_fields__
    no_checkpointing: dict[str, Any] = {
        "activation_checkpointing"
        if "activation_checkpointing" in fields
        else "gradient_checkpointing": False
    }
    return GRPOConfig(
        output_dir=str(out),
        learning_rate=cfg.lr,
        lr_scheduler_type="constant",
        max_steps=cfg.steps,
        # One generation batch per optimizer step: a "step" is prompts_per_step GRPO groups.
        per_device_train_batch_size=cfg.group_size * cfg.prompts_per_step,
        gradient_accumulation_steps=1,
        steps_per_generation=1,
        num_iterations=1,
        num_generations=cfg.group_size,
        max_completion_length=cfg.completion_tokens,
        temperature=cfg.temperature,
        beta=cfg.beta,
        logging_steps=1,
        save_strategy="steps",
        save_steps=cfg.save_every,
        save_total_limit=2,
        report_to="none",
        seed=cfg.seed,
        bf16=cuda,  # CPU trains in fp32
        **no_checkpointing,
        use_cpu=not cuda,
        use_vllm=vllm,
        vllm_mode="colocate",
        vllm_gpu_memory_utilization=cfg.vllm_memory,
        disable_tqdm=True,
        shuffle_dataset=False,
    )


def _open_training(
    records: Records, cfg: TrainIdeatorConfig, req: RunRequest, resume: bool
) -> tuple[str, TrainIdeatorConfig, float | None]:
    env = req.env
    latest = records.latest()
    if not resume:
        stored = {**asdict(cfg), TIMEOUT_KEY: req.timeout_s}
        return records.start(env.name, env.repo_hash, req.scale, stored), cfg, req.timeout_s
    if latest is None:
        raise ValueError(f"no ideator training to resume in {req.run_dir}: start one first")
    if latest["env_hash"] != env.repo_hash or latest["scale"] != req.scale:
        raise ValueError(
            f"{req.run_dir} holds a training of {latest['env']} at {latest['scale']}; this is "
            f"{env.name} at {req.scale}: use another --run-dir"
        )
    records.close_interrupted(latest["id"])
    remove_stale_workspaces(req.run_dir, req.env)
    stored = dict(latest["config"])
    timeout = stored.pop(TIMEOUT_KEY, req.timeout_s)
    # The stored settings win, the budget too: every step's rewards are on one budget.
    return latest["id"], TrainIdeatorConfig(**stored), timeout


def train_ideator(
    cfg: TrainIdeatorConfig,
    req: RunRequest,
    store: Store,
    *,
    client: LLMClient | None = None,
    resume: bool = False,
    progress: Progress = lambda _: None,
) -> TrainingResult:
    import torch

    cuda, installed = torch.cuda.is_available(), importlib.util.find_spec("vllm") is not None
    if not cfg.tiny:
        check_model(cfg.model)
    use_vllm(cfg.vllm, cuda, installed)  # a bad --vllm fails before anything is written
    records = Records(store)
    training_id, cfg, timeout = _open_training(records, cfg, req, resume)
    vllm = use_vllm(cfg.vllm, cuda, installed)  # on resume, the stored setting decides
    # Every idea runs with the same seed and budget: rewards compare. A short --timeout is a
    # screening budget, recorded with each run as its fidelity.
    req = with_fidelity(replace(req, seed=cfg.seed, timeout_s=timeout))
    progress(f"every idea trains for {describe(req)}")
    folder = training_dir(req.run_dir, training_id)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        result = _train(
            cfg, req, store, records, training_id, folder, client, resume, progress, cuda, vllm
        )
    except BaseException as e:
        records.finish(training_id, "failed", f"{type(e).__name__}: {e}".rstrip(": "))
        raise
    records.finish(training_id, "done")
    return result


def _baseline(req: RunRequest, store: Store, progress: Progress) -> float | None:
    """The baseline at the ideas' budget and conditions, on their seed if none is stored."""
    rewards = matching_baseline(store, req)
    if not rewards:
        progress(f"measuring the baseline ({describe(req)})")
        asyncio.run(run_baseline(req, store, [req.seed], progress))
        rewards = matching_baseline(store, req)
    return sum(rewards) / len(rewards) if rewards else None


def _train(
    cfg: TrainIdeatorConfig,
    req: RunRequest,
    store: Store,
    records: Records,
    training_id: str,
    folder: Path,
    client: LLMClient | None,
    resume: bool,
    progress: Progress,
    cuda: bool,
    vllm: bool,
) -> TrainingResult:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer, PrinterCallback, TrainerCallback
    from transformers.utils import logging as hf_logging
    from trl import GRPOTrainer

    hf_logging.disable_progress_bar()
    # transformers' own deprecation notices, raised inside TRL: not the user's to act on.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
    env = req.env
    baseline = _baseline(req, store, progress)
    if cfg.tiny:
        model = str(
            build_tiny_ideator(
                env,
                req.scale,
                folder / "base_tiny",
                seed=cfg.seed,
                knobs=cfg.knob_names,
                progress=progress,
            )
        )
    else:
        model = cfg.model
    tokenizer = AutoTokenizer.from_pretrained(model)
    prompt_text = ideator_prompt(env, req.scale, model)
    chat = bool(getattr(tokenizer, "chat_template", None)) and not cfg.tiny
    prompt: Any = [{"role": "user", "content": prompt_text}] if chat else prompt_text
    dataset = Dataset.from_dict({"prompt": [prompt] * (cfg.steps * cfg.prompts_per_step)})
    if cuda:
        import torch

        torch.cuda.set_device(cfg.policy_gpu)

    reward = ExecutionReward(
        config=cfg,
        req=req,
        store=store,
        records=records,
        training_id=training_id,
        baseline=baseline,
        client=client,
        embed=local_embedder(),
        progress=progress,
        count_tokens=lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]),
    )

    class _StepProgress(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            progress(f"step {state.global_step}/{state.max_steps} trained")

    checkpoints = folder / "checkpoints"
    start = last_checkpoint(checkpoints) if resume else None
    if resume and start is None and checkpoints.exists():
        shutil.rmtree(checkpoints)  # only incomplete checkpoints: start over, cache intact
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],  # type: ignore[list-item]  # a callable object, as TRL allows
        args=grpo_args(cfg, checkpoints, cuda=cuda, vllm=vllm),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha or 2 * cfg.lora_r,
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
        callbacks=[_StepProgress()],
    )
    # Progress goes through `progress` (and the store); keep stdout for --json.
    trainer.remove_callback(PrinterCallback)
    try:
        if start is not None:
            progress(f"resuming from {start.name}")
        trainer.train(resume_from_checkpoint=str(start) if start else None)
        adapter = folder / "adapter"
        trainer.save_model(str(adapter))  # the LoRA adapter and its config, not the base
        tokenizer.save_pretrained(str(adapter))
    finally:
        reward.close()
    summary = TrainingResult(
        training_id,
        env.name,
        req.scale,
        model,
        vllm,
        baseline,
        adapter,
        start.name if start else None,
        records.steps(training_id),
        asdict(cfg),
    )
    (folder / "summary.json").write_text(json.dumps(summary.to_json(), indent=2, default=str))
    return summary
