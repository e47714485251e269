"""The wheel ships the preset folders, and an installed neurosheet finds them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("models", "tasks", "deploy", "experiments")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(out)],
        check=True, capture_output=True, text=True, timeout=600,
    )
    (whl,) = out.glob("neurosheet-*.whl")
    return whl


def test_every_preset_is_in_the_wheel(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in KINDS:
        presets = sorted((ROOT / kind).glob("*.toml"))
        assert presets, f"no presets in {kind}/"
        for p in presets:
            assert f"neurosheet/_presets/{kind}/{p.name}" in names


def test_installed_wheel_resolves_presets_by_name(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=600)
    code = (
        "import json, neurosheet; from neurosheet.core.presets import list_presets;"
        "print(json.dumps({'file': neurosheet.__file__,"
        " 'presets': {k: sorted(list_presets(k)) for k in ('models', 'tasks', 'deploy', 'experiments')}}))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    info = json.loads(out)
    assert info["file"].startswith(str(target))
    for kind in KINDS:
        assert info["presets"][kind] == sorted(p.stem for p in (ROOT / kind).glob("*.toml"))
