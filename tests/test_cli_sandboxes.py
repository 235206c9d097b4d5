"""The CLI with --sandbox docker, --backend, --gpus and --slots, as a user runs them."""

from __future__ import annotations

import pytest

from tests.conftest import (
    TOY_ENV,
    assert_one_line_error,
    assert_store_consistent,
    docker_unavailable_reason,
    store_rows,
)

PATCH = TOY_ENV / "ideas" / "more_steps.patch"


@pytest.mark.docker
def test_run_idea_in_docker_scores_like_local(cli, toy_env, tmp_path) -> None:
    if reason := docker_unavailable_reason():
        pytest.skip(reason)
    rewards = {}
    for sandbox in ("local", "docker"):
        runs = tmp_path / sandbox
        res = cli(
            "run-idea",
            "--patch",
            PATCH,
            "--env",
            toy_env,
            "--sandbox",
            sandbox,
            "--run-dir",
            runs,
            "--json",
        )
        assert res.rc == 0, res
        assert res.json["status"] == "succeeded"
        rewards[sandbox] = res.json["reward"]
        assert store_rows(runs, "runs")[0]["sandbox"] == sandbox
        assert_store_consistent(runs)
    assert rewards["docker"] == pytest.approx(rewards["local"])


@pytest.mark.slow
def test_baseline_seeds_share_slots(cli, toy_env, run_dir) -> None:
    res = cli(
        "baseline", "--env", toy_env, "--seeds", "3", "--slots", "2", "--json", "--run-dir", run_dir
    )
    assert res.rc == 0, res
    assert [r["seed"] for r in res.json["runs"]] == [0, 1, 2]
    assert all(r["status"] == "succeeded" for r in res.json["runs"])
    assert all("queued" in r["timings"] for r in res.json["runs"])
    assert_store_consistent(run_dir)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--sandbox", "docker:colour=blue"], ["no option 'colour'", "image, network"]),
        (["--sandbox", "local:network=maybe"], ["must be a bool"]),
        (["--sandbox", "vm"], ["unknown sandbox kind 'vm'", "docker, local"]),
        (["--gpus", "a,b"], ["--gpus takes device ids"]),
    ],
)
def test_bad_sandbox_and_backend_options(cli, toy_env, run_dir, args, needles) -> None:
    res = cli("baseline", "--env", toy_env, "--seeds", "1", *args, "--run-dir", run_dir)
    assert res.rc == 2
    assert_one_line_error(res, *needles)
    assert not run_dir.exists()  # nothing written


def test_an_unknown_backend_is_one_line_naming_the_known_ones(cli, toy_env, run_dir) -> None:
    res = cli("baseline", "--env", toy_env, "--backend", "slurm", "--run-dir", run_dir)
    assert res.rc == 2
    assert_one_line_error(res, "--backend: unknown backend 'slurm'", "known: local, ray")
    assert not run_dir.exists()


def test_a_gpu_scale_without_gpus_says_what_to_do(cli, run_dir) -> None:
    res = cli("baseline", "--env", "posttrain_grpo", "--scale", "gpu", "--run-dir", run_dir)
    assert res.rc == 2
    assert_one_line_error(res, "needs 1 GPUs", "--gpus")
    assert not run_dir.exists()


@pytest.mark.parametrize("command", ["search", "train-ideator"])
def test_commands_that_optimise_the_reward_refuse_the_unisolated_fallback(
    cli, toy_env, run_dir, monkeypatch, command
) -> None:
    """Where bubblewrap cannot run, `--sandbox local` falls back to running steps unisolated.
    run-idea and baseline warn; search and train-ideator, which optimise against the reward,
    refuse unless the user asks for it by name."""
    import sandbox.local

    monkeypatch.setattr(sandbox.local, "isolation_problem", lambda: "bubblewrap is not installed")
    res = cli(command, "--env", toy_env, "--run-dir", run_dir)
    assert res.rc == 2
    assert_one_line_error(
        res, "cannot isolate here (bubblewrap is not installed)", "local:isolation=none"
    )
    assert not run_dir.exists()
    # Asked for by name, it passes the check (and fails later on an unreadable replay file,
    # which proves the sandbox was accepted without running anything).
    if command == "search":
        res = cli(
            command,
            "--env",
            toy_env,
            "--run-dir",
            run_dir,
            "--sandbox",
            "local:isolation=none",
            "--ideator",
            f"replay:{run_dir}/missing.jsonl",
        )
        assert res.rc == 2 and "optimises against the reward" not in res.stderr, res
        assert "error: replay file" in res.stderr and "missing.jsonl" in res.stderr
        assert "warning: the local sandbox cannot isolate here (isolation=none)" in res.stderr
