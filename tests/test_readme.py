"""Every Python snippet of the README runs as written, each alone in a fresh namespace."""
import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_its_snippets():
    assert len(SNIPPETS) >= 5


@pytest.mark.parametrize("number", range(len(SNIPPETS)))
def test_readme_snippet_runs_alone(number, monkeypatch):
    monkeypatch.delenv("BREGMAN_SOLVERS_DATA", raising=False)       # the embedded data, as on a fresh machine
    with warnings.catch_warnings():
        warnings.simplefilter("error")                              # a snippet shown to users warns nothing
        # run as a script: a snippet's `if __name__ == "__main__":` body runs too
        exec(compile(SNIPPETS[number], f"README.md snippet {number + 1}", "exec"), {"__name__": "__main__"})
