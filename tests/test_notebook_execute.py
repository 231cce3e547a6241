"""Rendering a notebook survives a kernel that dies on start (two kernels started at once
can be given the same TCP port), and nothing else is retried."""

from __future__ import annotations

from pathlib import Path

import papermill
import pytest

from vlmprof.report import notebook_execute


def test_a_kernel_that_died_on_start_is_started_again(monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []

    def execute_notebook(source: str, *args: object, **kwargs: object) -> None:
        calls.append(source)
        if len(calls) == 1:
            raise RuntimeError(notebook_execute.KERNEL_DIED)

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    notebook_execute.execute(Path("in.ipynb"), Path("out.ipynb"), "results/x")
    assert calls == ["in.ipynb", "in.ipynb"]


def test_any_other_failure_and_the_last_start_are_not_retried(monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []

    def execute_notebook(source: str, *args: object, **kwargs: object) -> None:
        calls.append(source)
        raise RuntimeError(
            "a cell failed"
            if source == "other.ipynb"
            else "Kernel died before replying to kernel_info"
        )

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    with pytest.raises(RuntimeError, match="a cell failed"):
        notebook_execute.execute(Path("other.ipynb"), Path("out.ipynb"), "results/x")
    assert len(calls) == 1
    with pytest.raises(RuntimeError, match="Kernel died"):
        notebook_execute.execute(Path("in.ipynb"), Path("out.ipynb"), "results/x")
    assert len(calls) == 1 + notebook_execute.KERNEL_STARTS
