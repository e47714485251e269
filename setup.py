"""Build hook: ship the top-level preset folders (models/, tasks/, deploy/, experiments/) inside the wheel.

The folders stay at the repository root so users edit them in place; at build time
they are copied to ``neurosheet/_presets/<kind>/`` where :mod:`neurosheet.core.presets`
finds them in an installed package.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PRESET_KINDS = ("models", "tasks", "deploy", "experiments")


class BuildWithPresets(build_py):
    """build_py that also copies every preset TOML into the built package."""

    def run(self) -> None:
        super().run()
        root = Path(__file__).resolve().parent
        for kind in PRESET_KINDS:
            for src in sorted((root / kind).glob("*.toml")):
                dest = Path(self.build_lib) / "neurosheet" / "_presets" / kind / src.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                self.copy_file(str(src), str(dest))


setup(cmdclass={"build_py": BuildWithPresets})
