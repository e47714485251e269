"""docs/python.md is executed top to bottom, so the walk-through cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"


def test_python_walkthrough_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 7
    monkeypatch.chdir(tmp_path)
    assert "STEPS, TRIALS = 600, 64" in blocks[0]
    blocks[0] = blocks[0].replace("STEPS, TRIALS = 600, 64", "STEPS, TRIALS = 30, 4")  # CI size
    namespace: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOC.name}[block {i}]", "exec"), namespace)
    out = capsys.readouterr().out
    assert "recurrent synapses" in out and "trial success" in out
    assert (tmp_path / "runs" / "py" / "circuit.nir").is_file()
    assert (tmp_path / "runs" / "report" / "index.md").is_file()


def test_api_reference_is_up_to_date():
    """docs/api.md is what `python docs/make_api.py` writes from today's docstrings."""
    import subprocess
    import sys

    script = DOC.parent / "make_api.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, "docs/api.md is stale: run `python docs/make_api.py`"
