"""Tests for agent.implementer.edits: parsing and atomic application of LLM code edits."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.implementer.edits import (
    SEARCH_REPLACE,
    UNIFIED_DIFF,
    Edit,
    EditApplyError,
    EditParseError,
    apply_edits,
    parse_edits,
    plan_edits,
)

TRAIN = """\
import torch

LR = 0.01
STEPS = 100


def train(model):
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    for step in range(STEPS):
        loss = model()
        loss.backward()
        opt.step()
    return model
"""


def block(path: str, search: str, replace: str, n: int = 7) -> str:
    return f"{path}\n{'<' * n} SEARCH\n{search}{'=' * n}\n{replace}{'>' * n} REPLACE\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "model.py").write_text("class Model:\n    pass\n")
    return tmp_path


def run(repo: Path, text: str, **kwargs) -> list[str]:
    return apply_edits(repo, parse_edits(text), **kwargs)


# --- parsing -----------------------------------------------------------------------------------


def test_parse_single_block_in_prose_and_fence() -> None:
    text = (
        "I'll raise the learning rate.\n\n```python\n"
        + block("train.py", "LR = 0.01\n", "LR = 0.1\n")
        + "```\n\nThat should converge faster."
    )
    assert parse_edits(text) == [
        Edit("train.py", "replace", "LR = 0.01\n", "LR = 0.1\n", SEARCH_REPLACE)
    ]


def test_parse_several_blocks_and_path_after_fence() -> None:
    text = (
        "First:\n\n```python\n"
        + block("train.py", "LR = 0.01\n", "LR = 0.1\n")
        + "```\n\nThen the model (path above the fence):\n\npkg/model.py\n```python\n"
        + "<<<<<<< SEARCH\n    pass\n=======\n    x = 1\n>>>>>>> REPLACE\n```\n"
    )
    edits = parse_edits(text)
    assert [(e.path, e.search, e.replace) for e in edits] == [
        ("train.py", "LR = 0.01\n", "LR = 0.1\n"),
        ("pkg/model.py", "    pass\n", "    x = 1\n"),
    ]


def test_consecutive_blocks_may_omit_the_repeated_path() -> None:
    text = block("train.py", "LR = 0.01\n", "LR = 0.1\n") + block("", "STEPS = 100\n", "S\n")[1:]
    assert [e.path for e in parse_edits(text)] == ["train.py", "train.py"]


@pytest.mark.parametrize(
    "label",
    [
        "src/train.py",
        "`src/train.py`",
        "**src/train.py**",
        "**`src/train.py`**",
        "# src/train.py",
        "### src/train.py",
        "File: src/train.py",
        "file: `src/train.py`",
        "**File:** `src/train.py`",
        "./src/train.py",
        "src/train.py:",
        "Change `src/train.py` as follows:",
    ],
)
def test_path_label_variants(label: str) -> None:
    (edit,) = parse_edits(block(label, "a\n", "b\n"))
    assert edit.path == "src/train.py"


@pytest.mark.parametrize("n", [5, 6, 8, 9])
def test_marker_count_tolerance(repo: Path, n: int) -> None:
    (edit,) = parse_edits(block("train.py", "LR = 0.01\n", "LR = 0.1\n", n=n))
    assert (edit.search, edit.replace) == ("LR = 0.01\n", "LR = 0.1\n")
    assert apply_edits(repo, [edit]) == ["train.py"]


def test_empty_search_is_create() -> None:
    (edit,) = parse_edits(block("new/util.py", "", "def f():\n    return 1\n"))
    assert (edit.kind, edit.search, edit.replace) == ("create", "", "def f():\n    return 1\n")


@pytest.mark.parametrize(
    "text",
    [
        "Sure, I think the learning rate should be higher.",
        "",
        "```python\nLR = 0.1\n```",
    ],
)
def test_no_edits_raises(text: str) -> None:
    with pytest.raises(EditParseError, match="no edit"):
        parse_edits(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train.py\n<<<<<<< SEARCH\nLR = 0.01\n=======\nLR = 0.1\n", "REPLACE"),
        ("train.py\n<<<<<<< SEARCH\nLR = 0.01\n>>>>>>> REPLACE\n", "divider"),
        ("<<<<<<< SEARCH\nLR = 0.01\n=======\nLR = 0.1\n>>>>>>> REPLACE\n", "no file path"),
        ("x\n=======\nLR = 0.1\n>>>>>>> REPLACE\n", "without a SEARCH"),
        ("--- a/train.py\n+++ b/train.py\nno hunk here\n", "no '@@"),
    ],
)
def test_malformed_blocks_raise(text: str, message: str) -> None:
    with pytest.raises(EditParseError, match=message) as info:
        parse_edits(text)
    assert "<<<<<<< SEARCH" in str(info.value)  # the expected format is shown


def test_malformed_block_reported_once_and_next_block_still_read() -> None:
    text = "a.py\n<<<<<<< SEARCH\nx\n" + block("b.py", "y\n", "z\n")
    with pytest.raises(EditParseError) as info:
        parse_edits(text)
    assert str(info.value).count("has no") == 1


# --- applying SEARCH/REPLACE ---------------------------------------------------------------


def test_apply_search_replace(repo: Path) -> None:
    text = block("train.py", "LR = 0.01\nSTEPS = 100\n", "LR = 0.1\nSTEPS = 300\n")
    assert run(repo, text) == ["train.py"]
    assert (repo / "train.py").read_text() == TRAIN.replace("0.01", "0.1").replace("100", "300")


def test_blocks_for_same_file_apply_in_order(repo: Path) -> None:
    text = block("train.py", "LR = 0.01\n", "LR = 0.02\n") + block(
        "train.py", "LR = 0.02\n", "LR = 0.03\n"
    )
    run(repo, text)
    assert "LR = 0.03\n" in (repo / "train.py").read_text()


def test_create_file_and_fill_empty_file(repo: Path) -> None:
    (repo / "empty.py").write_text("")
    text = block("new/dir/util.py", "", "X = 1\n") + block("empty.py", "", "Y = 2\n")
    assert run(repo, text) == ["empty.py", "new/dir/util.py"]
    assert (repo / "new/dir/util.py").read_text() == "X = 1\n"
    assert (repo / "empty.py").read_text() == "Y = 2\n"


def test_create_over_existing_file_fails(repo: Path) -> None:
    with pytest.raises(EditApplyError, match="already exists"):
        run(repo, block("train.py", "", "X = 1\n"))


def test_edit_of_missing_file_fails(repo: Path) -> None:
    with pytest.raises(EditApplyError, match="does not exist"):
        run(repo, block("nope.py", "a\n", "b\n"))


def test_trailing_whitespace_drift(repo: Path) -> None:
    run(repo, block("train.py", "LR = 0.01   \nSTEPS = 100\t\n", "LR = 0.1\nSTEPS = 100\n"))
    assert "LR = 0.1\nSTEPS = 100\n" in (repo / "train.py").read_text()


def test_indentation_offset_reindents_replacement(repo: Path) -> None:
    # The LLM dropped the function body's 4-space indent; the replacement must get it back.
    search = "for step in range(STEPS):\n    loss = model()\n"
    replace = "for step in range(STEPS):\n    if step % 10 == 0:\n        print(step)\n"
    replace += "    loss = model()\n"
    run(repo, block("train.py", search, replace))
    assert (
        "    for step in range(STEPS):\n        if step % 10 == 0:\n            print(step)\n"
        "        loss = model()\n        loss.backward()\n"
    ) in (repo / "train.py").read_text()


def test_indentation_offset_the_other_way(repo: Path) -> None:
    # The LLM indented a top-level block by 4 spaces.
    run(repo, block("train.py", "    LR = 0.01\n    STEPS = 100\n", "    LR = 0.5\n"))
    assert "\nLR = 0.5\n\n\ndef train" in (repo / "train.py").read_text()


def test_blank_line_drift_at_block_edges(repo: Path) -> None:
    (repo / "a.py").write_text("x = 1\ny = 2\nz = 3\n")
    run(repo, block("a.py", "\ny = 2\n\n", "\ny = 20\n\n"))
    assert (repo / "a.py").read_text() == "x = 1\ny = 20\nz = 3\n"


def test_crlf_file_keeps_crlf(repo: Path) -> None:
    (repo / "win.py").write_bytes(b"a = 1\r\nb = 2\r\nc = 3\r\n")
    run(repo, block("win.py", "b = 2\n", "b = 20\nb2 = 4\n"))
    assert (repo / "win.py").read_bytes() == b"a = 1\r\nb = 20\r\nb2 = 4\r\nc = 3\r\n"


def test_crlf_edit_text_on_lf_file(repo: Path) -> None:
    text = block("train.py", "LR = 0.01\n", "LR = 0.1\n").replace("\n", "\r\n")
    run(repo, text)
    assert b"\r" not in (repo / "train.py").read_bytes()


def test_file_without_final_newline_keeps_it(repo: Path) -> None:
    (repo / "a.py").write_text("x = 1\ny = 2")
    run(repo, block("a.py", "y = 2\n", "y = 3\n"))
    assert (repo / "a.py").read_text() == "x = 1\ny = 3"


def test_file_mode_is_kept(repo: Path) -> None:
    script = repo / "run.sh"
    script.write_text("echo 1\n")
    script.chmod(0o755)
    run(repo, block("run.sh", "echo 1\n", "echo 2\n"))
    assert script.stat().st_mode & 0o777 == 0o755


# --- errors ------------------------------------------------------------------------------------


def test_no_match_quotes_nearest_lines(repo: Path) -> None:
    text = block("train.py", "    for step in range(NUM_STEPS):\n        loss = model()\n", "x\n")
    with pytest.raises(EditApplyError) as info:
        run(repo, text)
    (failure,) = info.value.failures
    assert "train.py block 1" in failure
    assert "matches nothing" in failure
    assert "9 |     for step in range(STEPS):" in failure
    assert "10 |         loss = model()" in failure
    assert "1 of 1 edits did not apply: train.py block 1 matches nothing" in str(info.value)
    assert "\n" not in str(info.value)  # the summary is one line


def test_ambiguous_match_names_line_numbers(repo: Path) -> None:
    (repo / "a.py").write_text("def f():\n    return 0\n\ndef g():\n    return 0\n")
    with pytest.raises(EditApplyError) as info:
        run(repo, block("a.py", "    return 0\n", "    return 1\n"))
    (failure,) = info.value.failures
    assert "lines 2, 5" in failure
    assert "more surrounding lines" in failure


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.py", "pkg/../../outside.py"])
def test_path_escape_rejected(repo: Path, path: str) -> None:
    with pytest.raises(EditApplyError, match=r"is absolute|escapes the repository") as info:
        apply_edits(repo, [Edit(path, "create", "", "x\n", SEARCH_REPLACE)])
    assert "relative to the repository root" in info.value.failures[0] or (
        "is outside the repository" in info.value.failures[0]
    )
    assert not (repo.parent / "outside.py").exists()


def test_symlink_escape_rejected(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (repo / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(EditApplyError, match="escapes the repository"):
        run(repo, block("link/evil.py", "", "x\n"))
    assert not (outside / "evil.py").exists()


def test_disallowed_path_lists_editable_files(repo: Path) -> None:
    def allowed(path: str) -> bool:
        return path == "train.py"

    with pytest.raises(EditApplyError) as info:
        run(repo, block("pkg/model.py", "    pass\n", "    x = 1\n"), allowed=allowed)
    (failure,) = info.value.failures
    assert "may not be edited" in failure
    assert "train.py" in failure
    assert (repo / "pkg/model.py").read_text() == "class Model:\n    pass\n"


def test_git_dir_never_editable(repo: Path) -> None:
    with pytest.raises(EditApplyError, match="may not be edited"):
        run(repo, block(".git/config", "", "x\n"))


def test_atomic_one_good_one_bad(repo: Path) -> None:
    text = block("train.py", "LR = 0.01\n", "LR = 0.1\n") + block(
        "pkg/model.py", "    return 1\n", "    return 2\n"
    )
    with pytest.raises(EditApplyError) as info:
        run(repo, text)
    assert (repo / "train.py").read_text() == TRAIN
    assert len(info.value.failures) == 1
    assert info.value.failures[0].startswith("pkg/model.py block 1")
    assert str(info.value).startswith("1 of 2 edits did not apply")
    assert sorted(p.name for p in repo.iterdir()) == ["pkg", "train.py"]  # no temp files


def test_all_failures_collected(repo: Path) -> None:
    text = (
        block("train.py", "nope\n", "x\n")
        + block("train.py", "LR = 0.01\n", "LR = 0.1\n")
        + block("missing.py", "a\n", "b\n")
    )
    with pytest.raises(EditApplyError) as info:
        run(repo, text)
    assert [f.split(":")[0] for f in info.value.failures] == [
        "train.py block 1",
        "missing.py block 1",
    ]
    assert str(info.value).startswith("2 of 3 edits did not apply: train.py block 1 matches")


def test_plan_does_not_write(repo: Path) -> None:
    plan = plan_edits(repo, parse_edits(block("train.py", "LR = 0.01\n", "LR = 0.1\n")))
    assert plan == {"train.py": TRAIN.replace("0.01", "0.1")}
    assert (repo / "train.py").read_text() == TRAIN


def test_no_op_edit_changes_nothing(repo: Path) -> None:
    assert run(repo, block("train.py", "LR = 0.01\n", "LR = 0.01\n")) == []


# --- unified diffs ----------------------------------------------------------------------------


def test_unified_diff_modify_with_wrong_line_numbers(repo: Path) -> None:
    diff = """\
diff --git a/train.py b/train.py
index 123..456 100644
--- a/train.py
+++ b/train.py
@@ -40,7 +41,7 @@ import torch
 import torch
\x20
-LR = 0.01
+LR = 0.1
 STEPS = 100
"""
    (edit,) = parse_edits(diff)
    assert (edit.path, edit.kind, edit.source, edit.line_hint) == (
        "train.py",
        "hunk",
        UNIFIED_DIFF,
        40,
    )
    run(repo, diff)
    assert (repo / "train.py").read_text() == TRAIN.replace("0.01", "0.1")


def test_unified_diff_multiple_hunks_in_fence(repo: Path) -> None:
    text = """Here is the patch:

```diff
--- train.py\t2024-01-01 00:00:00
+++ train.py\t2024-01-02 00:00:00
@@ -3,2 +3,2 @@
-LR = 0.01
+LR = 0.1
 STEPS = 100
@@ -10,4 +10,5 @@ def train(model):
         loss = model()
         loss.backward()
+        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
         opt.step()
```
Done."""
    assert len(parse_edits(text)) == 2
    run(repo, text)
    content = (repo / "train.py").read_text()
    assert "LR = 0.1\n" in content
    assert "loss.backward()\n        torch.nn.utils.clip_grad_norm_(" in content


def test_unified_diff_create_and_delete(repo: Path) -> None:
    diff = """\
--- /dev/null
+++ b/pkg/new.py
@@ -0,0 +1,2 @@
+def f():
+    return 1
--- a/pkg/model.py
+++ /dev/null
@@ -1,2 +0,0 @@
-class Model:
-    pass
"""
    edits = parse_edits(diff)
    assert [(e.kind, e.path) for e in edits] == [
        ("create", "pkg/new.py"),
        ("delete", "pkg/model.py"),
    ]
    assert run(repo, diff) == ["pkg/model.py", "pkg/new.py"]
    assert (repo / "pkg/new.py").read_text() == "def f():\n    return 1\n"
    assert not (repo / "pkg/model.py").exists()


def test_unified_diff_no_newline_at_end_of_file(repo: Path) -> None:
    (repo / "a.py").write_text("x = 1\ny = 2")
    header = "--- a/a.py\n+++ b/a.py\n"
    no_newline = "\\ No newline at end of file\n"
    # The old side ends without a newline: the new one gains it.
    run(repo, header + "@@ -1,2 +1,3 @@\n x = 1\n-y = 2\n" + no_newline + "+y = 3\n+z = 4\n")
    assert (repo / "a.py").read_text() == "x = 1\ny = 3\nz = 4\n"
    # The new side ends without one: the file loses it.
    run(repo, header + "@@ -2,2 +2,1 @@\n y = 3\n-z = 4\n+z = 5\n" + no_newline)
    assert (repo / "a.py").read_text() == "x = 1\ny = 3\nz = 5"


def test_unified_diff_line_number_breaks_tie(repo: Path) -> None:
    (repo / "a.py").write_text("def f():\n    return 0\n\ndef g():\n    return 0\n")
    diff = "--- a/a.py\n+++ b/a.py\n@@ -5,1 +5,1 @@\n-    return 0\n+    return 1\n"
    run(repo, diff)
    assert (repo / "a.py").read_text() == "def f():\n    return 0\n\ndef g():\n    return 1\n"


def test_unified_diff_bare_empty_context_line(repo: Path) -> None:
    # LLMs often drop the leading space of empty context lines.
    diff = "--- a/train.py\n+++ b/train.py\n@@ -1,3 +1,3 @@\n"
    diff += " import torch\n\n-LR = 0.01\n+LR = 0.2\n"
    run(repo, diff)
    assert "LR = 0.2\n" in (repo / "train.py").read_text()


def test_mixed_formats_in_one_text(repo: Path) -> None:
    text = (
        "Change the LR:\n\n"
        + block("train.py", "LR = 0.01\n", "LR = 0.1\n")
        + "\nand the model:\n\n```diff\n--- a/pkg/model.py\n+++ b/pkg/model.py\n"
        + "@@ -1,2 +1,2 @@\n class Model:\n-    pass\n+    size = 3\n```\n"
    )
    edits = parse_edits(text)
    assert [e.source for e in edits] == [SEARCH_REPLACE, UNIFIED_DIFF]
    assert run(repo, text) == ["pkg/model.py", "train.py"]
    assert (repo / "pkg/model.py").read_text() == "class Model:\n    size = 3\n"


def test_unified_diff_no_match_reports_hunk(repo: Path) -> None:
    diff = "--- a/train.py\n+++ b/train.py\n@@ -3 +3 @@\n-LR = 0.05\n+LR = 0.1\n"
    with pytest.raises(EditApplyError) as info:
        run(repo, diff)
    assert "train.py hunk 1 matches nothing" in str(info.value)
    assert "3 | LR = 0.01" in info.value.failures[0]


def test_unified_diff_pure_insertion_uses_line_number(repo: Path) -> None:
    (repo / "a.py").write_text("x = 1\ny = 2\n")
    run(repo, "--- a/a.py\n+++ b/a.py\n@@ -1,0 +2,1 @@\n+z = 0\n")
    assert (repo / "a.py").read_text() == "x = 1\nz = 0\ny = 2\n"


def test_unified_diff_replacing_a_blank_line(repo: Path) -> None:
    (repo / "a.txt").write_text("\n")
    run(repo, "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1,2 @@\n-\n+one\n+two\n")
    assert (repo / "a.txt").read_text() == "one\ntwo\n"


def test_real_git_diff_with_trailing_prose_is_bounded(repo: Path) -> None:
    text = (
        "--- a/train.py\n+++ b/train.py\n@@ -3,1 +3,1 @@\n-LR = 0.01\n+LR = 0.1\n"
        "\nThis raises the LR.\n- it is a bullet, not a removed line\n"
    )
    (edit,) = parse_edits(text)
    assert (edit.search, edit.replace) == ("LR = 0.01\n", "LR = 0.1\n")


def test_nearest_lines_found_in_a_large_file(repo: Path) -> None:
    lines = [f"value_{i} = compute({i}, alpha={i * 3})\n" for i in range(3000)]
    (repo / "big.py").write_text("".join(lines))
    search = "".join(line.replace("alpha", "beta") for line in lines[2000:2010])
    with pytest.raises(EditApplyError) as info:
        run(repo, block("big.py", search, "x\n"))
    assert "2001 | value_2000 = compute(2000, alpha=6000)" in info.value.failures[0]


def test_missing_file_suggests_the_right_path(repo: Path) -> None:
    with pytest.raises(EditApplyError) as info:
        run(repo, block("model.py", "    pass\n", "    x = 1\n"))
    assert "Did you mean pkg/model.py?" in info.value.failures[0]
