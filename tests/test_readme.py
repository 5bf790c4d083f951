"""Every Python snippet of the README runs as a script, alone, from outside the checkout, warns
nothing, and prints what it computes."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_its_snippets():
    assert len(SNIPPETS) >= 5


@pytest.mark.parametrize("number", range(len(SNIPPETS)))
def test_readme_snippet_runs_as_a_script_and_prints_its_results(number, tmp_path):
    script = tmp_path / f"snippet{number + 1}.py"
    script.write_text(SNIPPETS[number])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("BREGMAN_SOLVERS_DATA", None)                   # the embedded data, as on a fresh machine
    # -W error: a snippet shown to users warns nothing; cwd outside the checkout, as a user runs it
    run = subprocess.run([sys.executable, "-W", "error", str(script)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    printed = [line for line in run.stdout.splitlines() if line.strip()]
    assert printed, f"README snippet {number + 1} prints nothing"
    # every number it prints is labelled: no line of bare values such as "[2] [29666720]"
    for line in printed:
        assert re.search(r"[A-Za-z]", line), f"README snippet {number + 1} prints an unlabelled line: {line!r}"
