"""MkDocs hooks: the experiments' figures become part of the site.

``experiments/results/NAME.png`` (the full runs' figures, not the ``*_smoke*`` ones) is
served as ``figures/experiments/NAME.png``, so a page in ``docs/concepts/`` or
``docs/howto/`` shows it with ``![...](../figures/experiments/NAME.png)``. The files are
added to MkDocs' file collection, so ``mkdocs build --strict`` checks such links like any
other: a link to a figure that no experiment has produced fails the build.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

#: Where the experiment scripts write their figures, relative to the repository root.
RESULTS = Path("experiments") / "results"
#: Where the figures appear in the site.
PREFIX = "figures/experiments"


def experiment_figures(results: Path) -> list[Path]:
    """The figures of the full experiment runs in ``results``, sorted; smoke runs' left out."""
    return sorted(p for p in results.glob("*.png") if "_smoke" not in p.name)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Adds every experiment figure to the site as ``figures/experiments/NAME.png``."""
    root = Path(config.config_file_path).resolve().parent
    for figure in experiment_figures(root / RESULTS):
        files.append(File.generated(config, f"{PREFIX}/{figure.name}", abs_src_path=str(figure)))
    return files
