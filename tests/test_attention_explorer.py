"""Chapter 04's attention explorer: its controls redraw the figure, with the ipywidgets installed.

The explorer cell of ``notebooks/04_self_attention.ipynb`` is run here with a drawing
function that records its calls, so the test sees which (example, head, query) each
control change would draw. It uses only widgets that ipywidgets 7.7 (what Colab ships)
and 8.x both have; the same checks passed with 7.7.5 and 8.1 when this was written.
A browser test (elsewhere) moves the real slider; the CSS classes give it stable handles.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

widgets = pytest.importorskip("ipywidgets")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_self_attention.ipynb"


def explorer_source() -> str:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    (cell,) = [c for c in cells if c.get("id") == "explorer-widget"]
    return "".join(cell["source"])


@pytest.fixture()
def explorer():
    calls = []
    sentence = "the cat saw the dog and the cat ran".split()
    namespace = {
        "examples": {
            "animals and vehicles (1 head)": (list("abc"), list("abc"), torch.rand(1, 3, 3)),
            "two hand-built heads": (sentence, sentence, torch.rand(2, 9, 9)),
            "padding + causal masks (1 head)": (list("abcdef"), list("abcdef"), torch.rand(1, 6, 6)),
        },
        "sentence": sentence,
        "show_attention": lambda example, head=0, query=0: calls.append((example, head, query)),
    }
    exec(compile(explorer_source(), str(NOTEBOOK), "exec"), namespace)  # noqa: S102 - our own notebook
    return namespace, calls


def test_explorer_draws_the_default_and_redraws_on_every_control(explorer):
    ns, calls = explorer
    assert calls == [("two hand-built heads", 1, 6)], "the explorer draws its default selection at once"
    head, query, example = ns["head_w"], ns["query_w"], ns["example_w"]
    head.value = 0
    assert calls[-1] == ("two hand-built heads", 0, 6), "moving the head slider redraws with the new head"
    query.value = 2
    assert calls[-1] == ("two hand-built heads", 0, 2)
    example.value = "animals and vehicles (1 head)"  # one head, three tokens: the controls follow
    assert calls[-1] == ("animals and vehicles (1 head)", 0, 0)
    assert head.max == 0 and [v for _, v in query.options] == [0, 1, 2]
    example.value = "two hand-built heads"
    head.value = 1
    assert calls[-1] == ("two hand-built heads", 1, 0) and head.max == 1


def test_explorer_structure_is_stable(explorer):
    ns, _ = explorer
    head = ns["head_w"]
    assert type(head) is widgets.IntSlider and head.description == "head" and not head.continuous_update
    assert type(ns["figure_w"]) is widgets.Output
    box = ns["explorer"]
    assert isinstance(box, widgets.VBox) and box.children[1] is ns["figure_w"]
    for name in ("explorer", "example", "head", "query", "figure"):
        part = ns["explorer" if name == "explorer" else f"{name}_w"]
        assert f"ptcourse-attention-{name}" in part._dom_classes
