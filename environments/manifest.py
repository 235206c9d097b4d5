"""The environment manifest (`env.toml`; docs/architecture.md, Environment manifest).

An environment is a folder holding `env.toml`, a task statement, the baseline `repo`
that ideas patch, and a protected evaluator outside `repo`. `load_environment` turns
the folder into an `Environment`; every problem with the manifest becomes one
`ManifestError` line that names the file and the field.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MANIFEST = "env.toml"


class ManifestError(ValueError):
    """A manifest that cannot be used; the message is one line naming file and field."""


class _Strict(BaseModel):
    # Unknown keys are typos far more often than intent: reject them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metric(_Strict):
    name: str = Field(description="Metric the evaluator writes into result.json, e.g. val_loss.")
    direction: Literal["maximize", "minimize"] = Field(description="Which way is better.")
    reward: str = Field(description="Reward expression over the metrics, e.g. '1 / val_loss'.")
    range: tuple[float, float] = Field(
        description="Plausible [low, high] for the metric; values outside are flagged."
    )

    @field_validator("range")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] > v[1]:
            raise ValueError(f"low {v[0]} is above high {v[1]}")
        return v

    @field_validator("reward")
    @classmethod
    def _parses(cls, v: str) -> str:
        from environments.reward import check_expression  # local: keep manifest import light

        check_expression(v)
        return v


class StepSpec(_Strict):
    command: str = Field(description="Shell command; paths come from EXECUTOR_* variables.")
    timeout: float = Field(gt=0, description="Seconds before the whole process group is killed.")


class Scale(_Strict):
    command: str = Field(description="Training command, run with the workspace as cwd.")
    timeout: float = Field(
        gt=0, description="Seconds (on the budget clock) before the harness kills training."
    )
    gpus: int = Field(0, ge=0, description="GPUs the run needs (0 at tiny scale).")
    cpus: int = Field(1, ge=1, description="CPU cores the run needs.")
    memory_gb: float = Field(4, gt=0, description="Memory limit for the run.")
    time_budget: float | None = Field(
        None,
        gt=0,
        description="Seconds (on the budget clock) of training the scale allows, passed to "
        "training as EXECUTOR_TIME_BUDGET_S; `timeout` (the harness's kill) should leave only "
        "a small margin.",
    )
    budget_clock: Literal["wall", "cpu"] = Field(
        "wall",
        description="What `time_budget`, `timeout` and the timed outputs' times count: wall-clock "
        "seconds, or CPU-seconds of the training step's processes (user + system, every thread "
        "and child), measured by the harness; other work on the machine does not shrink those. "
        "Training reads the clock from EXECUTOR_BUDGET_CLOCK.",
    )
    wall_timeout: float | None = Field(
        None,
        gt=0,
        description="For budget_clock = 'cpu': wall-clock seconds after which training is killed "
        "even below its CPU limit (it waits instead of computing, or the machine is far too "
        "busy); default 4 x timeout.",
    )
    evaluate_timeout: float | None = Field(
        None, gt=0, description="Seconds for the evaluator at this scale (else evaluate.timeout)."
    )
    metric_range: tuple[float, float] | None = Field(
        None, description="Plausible [low, high] of the metric at this scale (else metric.range)."
    )
    baseline_reward: float | None = Field(None, description="Measured reward of the baseline.")
    timed_outputs: list[str] = Field(
        default_factory=list,
        description="Globs (in EXECUTOR_OUTPUT_DIR) of files whose times the harness records as "
        "it sees them change during training (e.g. checkpoints): the evaluator reads them from "
        "EXECUTOR_OUTPUT_TIMES instead of trusting times that training writes.",
    )
    disk_gb: float = Field(
        20,
        gt=0,
        description="What training, smoke and export may write in all (workspace and output "
        "together); the step is killed above it.",
    )
    description: str = Field("", description="One line shown by `executor envs`.")

    @model_validator(mode="after")
    def _budget_fits(self) -> Scale:
        if self.time_budget is not None and self.time_budget > self.timeout:
            raise ValueError(f"time_budget {self.time_budget:g} is above timeout {self.timeout:g}")
        if self.wall_timeout is not None and self.budget_clock != "cpu":
            raise ValueError(
                'wall_timeout is only for budget_clock = "cpu" (a wall-clock scale\'s timeout '
                "is already wall-clock): remove it, or set the clock"
            )
        if self.wall_timeout is not None and self.wall_timeout * self.cpus < self.timeout:
            raise ValueError(
                f"wall_timeout {self.wall_timeout:g} is below timeout / cpus "
                f"({self.timeout:g} / {self.cpus}): training would always meet the wall-clock "
                "cap before its CPU limit; raise wall_timeout"
            )
        if self.metric_range is not None and self.metric_range[0] > self.metric_range[1]:
            raise ValueError(f"metric_range low {self.metric_range[0]} is above high")
        return self

    def wall_cap(self, timeout: float) -> float:
        """Wall-clock seconds for training that may use `timeout` on the budget clock (the
        scale's timeout, or a shorter --timeout): that itself on a wall clock; on a CPU clock,
        `wall_timeout` shrunk in proportion."""
        if self.budget_clock == "wall":
            return timeout
        cap = self.wall_timeout if self.wall_timeout is not None else 4 * self.timeout
        return cap * timeout / self.timeout


class Knob(_Strict):
    name: str = Field(description="Hyper-parameter name.")
    type: Literal["float", "int", "bool", "choice"] = Field(description="Value type.")
    default: float | int | bool | str = Field(description="Baseline value.")
    range: tuple[float, float] | None = Field(None, description="Bounds for float/int knobs.")
    choices: list[str | float | int] | None = Field(None, description="Values of a choice knob.")
    log: bool = Field(False, description="Sample on a log scale.")
    file: str = Field(description="Repo file where the knob lives.")
    pattern: str = Field(description="Text around the value in that file, with {value} in it.")
    scales: list[str] | None = Field(None, description="Scales the knob affects (all if unset).")

    @model_validator(mode="after")
    def _consistent(self) -> Knob:
        if "{value}" not in self.pattern:
            raise ValueError("pattern must contain {value}")
        if self.type in ("float", "int") and self.range is None:
            raise ValueError(f"a {self.type} knob needs a range")
        if self.type == "choice" and not self.choices:
            raise ValueError("a choice knob needs choices")
        return self


class Control(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", description="Short name of the arm.")
    description: str = Field(description="What it changes, and why it must not win.")
    patch: str = Field(description="Edits (like an idea's patch file) that make the control arm.")


class Ensemble(_Strict):
    """How the harness combines the focus file of k ideas into one candidate."""

    file: str = Field(description="The focus file each member changed, e.g. rewards.py.")
    member: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*\{i\}[A-Za-z0-9_]*\.py$",
        description="Where member i's version of `file` goes, e.g. reward_member_{i}.py.",
    )
    template: str = Field(
        description="jinja2 template (in the environment folder) of the new `file`; it gets "
        "`modules`, the members' module names in order."
    )

    def member_path(self, i: int) -> str:
        return self.member.replace("{i}", str(i))

    @property
    def member_glob(self) -> str:
        return self.member.replace("{i}", "*")


class Focus(_Strict):
    """A named narrowing of what ideas may change (`executor search --focus NAME`)."""

    description: str = Field("", description="One line shown by `executor envs`.")
    brief: str | None = Field(
        None,
        description="Markdown file (in the environment folder) appended to the task for the "
        "ideator and the implementer: the interface the focus files must keep, the rules.",
    )
    editable: list[str] = Field(
        min_length=1, description="Globs (in repo) ideas may change under this focus."
    )
    knobs: list[str] = Field(
        default_factory=list, description="Names of the knobs that apply under this focus."
    )
    rank_by: str | None = Field(
        None,
        description="Metric ideas are ranked by in the ideator's feedback and the choice of "
        "finalists (default: the reward); `executor search --rank-by` overrides it.",
    )
    feedback: list[str] = Field(
        default_factory=list,
        description="Metrics shown for each earlier idea in the ideator's ranked summaries.",
    )
    check: StepSpec | None = Field(
        None,
        description="Protected command run on each candidate after it compiles and before its "
        "smoke test (cwd: the workspace, eval-only data hidden). Its last stdout line "
        '`EXECUTOR_CHECK {"rejected": [...], "flags": [...]}` rejects the candidate '
        "(exit non-zero) or passes it with flags.",
    )
    ensemble: Ensemble | None = Field(
        None, description="How `executor search --ensembles` combines ideas under this focus."
    )


class Manifest(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", description="Environment name.")
    description: str = Field("", description="One line shown by `executor envs`.")
    task: str = Field(description="Markdown file with the research problem and its rules.")
    repo: str = Field("repo", description="Folder of the baseline codebase that ideas patch.")
    editable: list[str] = Field(min_length=1, description="Globs (in repo) ideas may change.")
    metric: Metric
    evaluate: StepSpec = Field(description="Protected evaluator step; writes EXECUTOR_RESULT_PATH.")
    smoke: StepSpec = Field(
        description="Seconds-long command proving a candidate starts and steps."
    )
    scales: dict[str, Scale] = Field(description="At least `tiny`; real scales beside it.")
    knobs: list[Knob] = Field(default_factory=list, description="Tunable hyper-parameters.")
    eval_only: list[str] = Field(
        default_factory=list,
        description="Paths or globs in the environment folder (outside `repo`) that only the "
        "evaluate step may read: held-out data, reference outputs. Every other step (smoke, "
        "training, export) cannot see them in an isolating sandbox, and the implementer never "
        "shows them.",
    )
    export: StepSpec | None = Field(
        None,
        description="Optional step after training that runs candidate code to turn its output "
        "into what the evaluator scores (e.g. rebuild and export the model). It sees what "
        "training sees, reads EXECUTOR_OUTPUT_DIR read-only and writes EXECUTOR_EXPORT_DIR; "
        "the evaluator, which then runs no candidate code, reads that folder.",
    )
    image: str | None = Field(None, description="Dockerfile for the real scales.")
    controls: list[Control] = Field(
        default_factory=list,
        description="Control arms `executor search --controls` runs like ideas, besides the "
        "null idea (the unchanged baseline): changes that must not beat the baseline, such as "
        "a training reward that ignores correctness. One that wins says the comparison is "
        "broken.",
    )

    focus: dict[str, Focus] = Field(
        default_factory=dict,
        description="Named focuses (`--focus NAME`): narrower editable files, knobs and checks.",
    )

    @field_validator("scales")
    @classmethod
    def _has_tiny(cls, v: dict[str, Scale]) -> dict[str, Scale]:
        if "tiny" not in v:
            raise ValueError("a `tiny` scale is required (CPU, minutes, no downloads)")
        return v


class Environment:
    """A loaded environment: the manifest plus the paths it resolves to."""

    def __init__(
        self,
        root: Path,
        manifest: Manifest,
        focus_name: str | None = None,
        *,
        whole: Manifest | None = None,
    ) -> None:
        self.root = root
        self.manifest = manifest
        self.focus_name = focus_name  # set by `focused`: the manifest is then narrowed
        self.whole = whole or manifest  # the manifest before any focus narrowed it

    @property
    def focus(self) -> Focus | None:
        return None if self.focus_name is None else self.manifest.focus[self.focus_name]

    def focused(self, name: str | None, *, ensembles: bool = False) -> Environment:
        """This environment narrowed to focus `name` (None or "": unchanged): only its files
        are editable, only its knobs apply, and its brief follows the task. `ensembles`: the
        harness's ensemble members may be written too."""
        if not name:
            return self
        if name not in self.whole.focus:
            known = ", ".join(self.whole.focus) or "none"
            raise ManifestError(
                f"environment {self.name!r} has no focus {name!r}; its focuses: {known}"
            )
        spec = self.whole.focus[name]
        editable = list(spec.editable)
        if ensembles and spec.ensemble is not None:
            editable.append(spec.ensemble.member_glob)
        narrowed = self.whole.model_copy(
            update={
                "editable": editable,
                "knobs": [k for k in self.whole.knobs if k.name in spec.knobs],
            }
        )
        env = Environment(self.root, narrowed, name, whole=self.whole)
        env.__dict__["repo_hash"] = self.repo_hash  # the same repo: no need to hash it again
        return env

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def repo(self) -> Path:
        return self.root / self.manifest.repo

    @property
    def task_text(self) -> str:
        text = (self.root / self.manifest.task).read_text()
        focus = self.focus
        if focus is not None and focus.brief:
            brief = (self.root / focus.brief).read_text()
            text = f"{text.rstrip()}\n\n# Focus: {self.focus_name}\n\n{brief.strip()}\n"
        return text

    def scale(self, name: str) -> Scale:
        try:
            return self.manifest.scales[name]
        except KeyError:
            known = ", ".join(self.manifest.scales)
            raise ManifestError(
                f"environment {self.name!r} has no scale {name!r}; choose one of: {known}"
            ) from None

    def is_editable(self, rel_path: str) -> bool:
        return any(fnmatch.fnmatchcase(rel_path, g) for g in self.manifest.editable)

    def repo_files(self) -> list[str]:
        """Every file of the baseline repo, relative, posix, sorted (caches excluded)."""
        out = []
        for p in self.repo.rglob("*"):
            rel = p.relative_to(self.repo).as_posix()
            if p.is_file() and not _ignored(rel):
                out.append(rel)
        return sorted(out)

    def editable_files(self) -> list[str]:
        return [f for f in self.repo_files() if self.is_editable(f)]

    @cached_property
    def repo_hash(self) -> str:
        """Content hash of the baseline repo: the 'environment version' baselines are keyed by."""
        return _hash_files(self.repo, self.repo_files())

    def eval_only_paths(self) -> list[Path]:
        """Existing files and folders that only the evaluate step may read (absolute, sorted)."""
        found: set[Path] = set()
        for pattern in self.manifest.eval_only:
            found.update(p.resolve() for p in self.root.glob(pattern))
        return sorted(found)

    def is_eval_only(self, rel: str) -> bool:
        """Whether `rel` (relative to the environment folder) is, or lies in, an eval-only path."""
        path = (self.root / rel).resolve()
        return any(path == p or p in path.parents for p in self.eval_only_paths())

    def protected_files(self) -> list[str]:
        """Everything outside `repo` (manifest, evaluator, data), relative to the root."""
        files = []
        for p in self.root.rglob("*"):
            rel = p.relative_to(self.root).as_posix()
            if p.is_file() and not _ignored(rel) and not rel.startswith(self.manifest.repo + "/"):
                files.append(rel)
        return sorted(files)

    def protected_hashes(self) -> dict[str, str]:
        """A fingerprint of each protected file: checked before and after every training step.

        Files up to 64 MiB are hashed; larger ones (prepared datasets: tens of GB of token
        shards) are fingerprinted by size and modification time, which costs nothing per run.
        """
        return {rel: _fingerprint(self.root / rel) for rel in self.protected_files()}


_HASH_LIMIT = 64 << 20


def _fingerprint(path: Path) -> str:
    st = path.stat()
    if st.st_size > _HASH_LIMIT:
        return f"size={st.st_size} mtime_ns={st.st_mtime_ns}"
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _ignored(rel: str) -> bool:
    parts = rel.split("/")
    return any(p in ("__pycache__", ".git", ".pytest_cache") for p in parts) or rel.endswith(".pyc")


def _hash_files(root: Path, rels: list[str]) -> str:
    h = hashlib.sha256()
    for rel in rels:
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256((root / rel).read_bytes()).digest())
    return h.hexdigest()


def load_environment(path: Path) -> Environment:
    """Parse and check `path/env.toml`; raise ManifestError (one line) on any problem."""
    root = path.resolve()
    file = root / MANIFEST
    if not file.is_file():
        raise ManifestError(f"{file}: not found; an environment folder needs an {MANIFEST}")
    try:
        data = tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(f"{file}: invalid TOML: {e}") from None
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
        raise ManifestError(f"{file}: field `{field}`: {msg}{more}") from None
    env = Environment(root, manifest)
    _check_paths(env, file)
    return env


def _check_paths(env: Environment, file: Path) -> None:
    m = env.manifest
    if not (env.root / m.task).is_file():
        raise ManifestError(f"{file}: field `task`: file {m.task!r} does not exist")
    if not env.repo.is_dir():
        raise ManifestError(f"{file}: field `repo`: folder {m.repo!r} does not exist")
    if not env.editable_files():
        raise ManifestError(f"{file}: field `editable`: no file in {m.repo!r} matches {m.editable}")
    if m.image is not None and not (env.root / m.image).is_file():
        raise ManifestError(f"{file}: field `image`: file {m.image!r} does not exist")
    for i, pattern in enumerate(m.eval_only):
        matches = [p.resolve() for p in env.root.glob(pattern)]
        if not matches:
            raise ManifestError(f"{file}: field `eval_only.{i}`: {pattern!r} matches nothing")
        repo = env.repo.resolve()
        if any(p == repo or repo in p.parents or p in repo.parents for p in matches):
            raise ManifestError(
                f"{file}: field `eval_only.{i}`: {pattern!r} overlaps `repo`; held-out data "
                "must live outside the code that ideas edit"
            )
        if any(p == env.root or (env.root / m.task).resolve() == p for p in matches):
            raise ManifestError(f"{file}: field `eval_only.{i}`: {pattern!r} hides the task")
    names = [c.name for c in m.controls]
    for i, control in enumerate(m.controls):
        if not (env.root / control.patch).is_file():
            raise ManifestError(
                f"{file}: field `controls.{i}.patch`: file {control.patch!r} does not exist"
            )
        if control.name == "null" or names.count(control.name) > 1:
            raise ManifestError(
                f"{file}: field `controls.{i}.name`: {control.name!r} is taken (names are "
                "unique, and `null` is the built-in unchanged baseline)"
            )
    for name, focus in m.focus.items():
        if problem := _focus_problem(env, focus):
            raise ManifestError(f"{file}: field `focus.{name}.{problem}")
    for i, knob in enumerate(m.knobs):
        if not env.is_editable(knob.file):
            raise ManifestError(f"{file}: field `knobs.{i}.file`: {knob.file!r} is not editable")
        if problem := _knob_problem(env, knob):
            raise ManifestError(f"{file}: field `knobs.{i}.pattern`: {problem}")
        unknown = set(knob.scales or ()) - set(m.scales)
        if unknown:
            raise ManifestError(f"{file}: field `knobs.{i}.scales`: no scale {sorted(unknown)}")


def _focus_problem(env: Environment, focus: Focus) -> str | None:
    """What is wrong with a focus, as "field`: why", or None."""
    m = env.manifest
    for key, rel in (
        ("brief", focus.brief),
        ("ensemble.template", focus.ensemble and focus.ensemble.template),
    ):
        if rel and not (env.root / rel).is_file():
            return f"{key}`: file {rel!r} does not exist"
    files = env.repo_files()
    editable = [f for f in files if any(fnmatch.fnmatchcase(f, g) for g in focus.editable)]
    if not editable:
        return f"editable`: no file in {m.repo!r} matches {focus.editable}"
    if outside := [f for f in editable if not env.is_editable(f)]:
        return f"editable`: {outside[0]!r} is not editable in the environment itself"
    names = {k.name for k in m.knobs}
    if unknown := sorted(set(focus.knobs) - names):
        return f"knobs`: no knob {unknown[0]!r}"
    if focus.ensemble is not None and focus.ensemble.file not in editable:
        return f"ensemble.file`: {focus.ensemble.file!r} is not one of the focus's files"
    return None


def knob_regex(knob: Knob) -> re.Pattern[str]:
    """The knob's pattern as a regex whose group 1 is the value's literal text."""
    before, _, after = knob.pattern.partition("{value}")
    return re.compile(re.escape(before) + r"([^\s,)#\]\"']+)" + re.escape(after))


def _knob_problem(env: Environment, knob: Knob) -> str | None:
    """Why the knob's pattern does not locate its default value exactly once, or None."""
    path = env.repo / knob.file
    if not path.is_file():
        return f"{knob.file!r} does not exist"
    found = knob_regex(knob).findall(path.read_text())
    if len(found) != 1:
        return f"{knob.pattern!r} matches {len(found)} places in {knob.file} (must be exactly 1)"
    text = found[0]
    try:
        same = (
            float(text) == float(knob.default)
            if knob.type in ("float", "int")
            else (text.lower() == str(knob.default).lower())
        )
    except ValueError:
        same = False
    if not same:
        return f"{knob.file} has {knob.name} = {text}, but the knob's default is {knob.default}"
    return None
