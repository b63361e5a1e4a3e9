"""Build hook only (the project is configured in pyproject.toml).

The example designs live in the repository's top-level `designs/` folder (the README's tour uses
them there). A wheel copies them into the package as `fabplan/shipped_designs/` so that
`pip install .` followed by `fabplan demo` works from any folder; `fabplan.shipped` finds either.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithDesigns(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads designs/ from the checkout
        target = Path(self.build_lib) / "fabplan" / "shipped_designs"
        target.mkdir(parents=True, exist_ok=True)
        for src in sorted((HERE / "designs").iterdir()):
            if src.is_file() and src.suffix in (".yaml", ".json"):
                shutil.copyfile(src, target / src.name)
        samples = HERE / "designs" / "samples"  # the tour's sample inputs (dose-matrix CSV, drawn GDS)
        (target / "samples").mkdir(exist_ok=True)
        for src in sorted(samples.iterdir()):
            if src.is_file() and src.suffix in (".csv", ".gds", ".md"):
                shutil.copyfile(src, target / "samples" / src.name)


setup(cmdclass={"build_py": BuildPyWithDesigns})
