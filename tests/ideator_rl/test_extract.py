"""Only the idea is executed: thinking is kept out; a completion cut off mid-thought has none."""

from __future__ import annotations

from agent.ideator_rl.extract import extract_idea


def test_thinking_is_kept_out_of_the_idea() -> None:
    e = extract_idea("<think>lr looks low; raise it</think>\nIdea: raise lr to 3e-3 with warmup")
    assert e.idea == "raise lr to 3e-3 with warmup"
    assert e.thinking == "lr looks low; raise it" and e.problem is None


def test_a_tiny_ideator_completion() -> None:
    e = extract_idea("<think>raise lr from 0.01</think> lr=0.03 steps=200")
    assert e.idea == "lr=0.03 steps=200" and e.thinking == "raise lr from 0.01"


def test_unclosed_thinking_has_no_idea() -> None:
    e = extract_idea("<think>maybe the learning rate... Idea: lr=1")
    assert e.idea == "" and "inside its thinking" in str(e.problem)
    assert "maybe the learning rate" in e.thinking


def test_empty_and_chat_completions() -> None:
    assert extract_idea("<think>hmm</think>   ").problem == "the completion holds no idea"
    chat = [{"role": "assistant", "content": "**Idea:** use a cosine schedule"}]
    assert extract_idea(chat).idea == "use a cosine schedule"


def test_thinking_opened_by_the_chat_template() -> None:
    e = extract_idea("the baseline lr is 0.01, so raise it\n</think>\n\nIdea: lr=0.03")
    assert e.idea == "lr=0.03" and e.thinking == "the baseline lr is 0.01, so raise it"
