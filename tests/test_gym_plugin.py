"""An installed neurosheet registers its gymnasium ids through gymnasium's plugin entry point,
whichever of `import gymnasium` and `import neurosheet` comes first."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The wheel of this checkout, installed into a folder of its own."""
    out = tmp_path_factory.mktemp("gym-wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(out)],
                   check=True, capture_output=True, text=True, timeout=600)
    (whl,) = out.glob("neurosheet-*.whl")
    eps = [n for n in zipfile.ZipFile(whl).namelist() if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(whl).read(eps[0]).decode()
    assert "[gymnasium.envs]" in text and "neurosheet.tasks.gym_ids:register_envs" in text
    target = out / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(whl)], check=True, capture_output=True, timeout=600)
    return target


@pytest.mark.parametrize("first", ["gymnasium", "neurosheet"])
def test_import_gymnasium_registers_the_ids(site, tmp_path, first):
    imports = ("import gymnasium as gym; import neurosheet" if first == "gymnasium"
               else "import neurosheet; import gymnasium as gym")
    code = (f"import sys; {imports};"
            "assert neurosheet.__file__.startswith(sys.argv[1]), neurosheet.__file__;"
            "ids = [i for i in gym.envs.registry if i.startswith('neurosheet/')];"
            "assert len(ids) == 252, len(ids);"
            "assert 'torch' not in sys.modules and 'neurogym' not in sys.modules;"
            "env = gym.make('neurosheet/ModCogRef-dms-intl-v0'); env.reset(seed=0);"
            "print('ok')")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code, str(site)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
