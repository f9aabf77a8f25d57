"""``urbangis demo files``: the sample files under data/demo, from the deterministic city.

The CGXML files describe imobile of the demo generated with the given parameters; the
register of acts always cites the default demo (25 000 parcels, seed 1), the one
``make demo`` loads, so the committed files and the loaded database agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from importers.demo.cgxml import broken_file, cgxml_files
from importers.demo.generate import DemoCity, DemoParameters, Progress, generate
from importers.demo.register import register_csv

REGISTER_FILE = "register_acts.csv"
CGXML_FOLDER = "cgxml"


def _quiet(message: str) -> None:
    del message


def sample_files(parameters: DemoParameters, progress: Progress = _quiet) -> dict[str, bytes]:
    """Relative path -> content of every sample file (nothing written)."""
    demo = generate(parameters, progress)
    default = DemoParameters()
    register_demo = demo if parameters == default else generate(default, progress)
    standard, older, broken = choose_parcels(demo)
    files = {
        f"{CGXML_FOLDER}/{f.name}": f.content
        for f in [
            *cgxml_files(demo, standard),
            *cgxml_files(demo, older, "CP"),
            broken_file(demo, broken),
        ]
    }
    files[REGISTER_FILE] = register_csv(register_demo)
    return files


def write_samples(out: Path, parameters: DemoParameters, progress: Progress = _quiet) -> list[Path]:
    """Write the sample files under ``out`` (existing sample files are replaced)."""
    written = []
    for relative, content in sorted(sample_files(parameters, progress).items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written


def choose_parcels(demo: DemoCity) -> tuple[np.ndarray, np.ndarray, int]:
    """20 imobile for CGXML (4 with two or more buildings, 2 outside the intravilan),
    2 for the CP variant, and a four-cornered one to break."""
    rng = np.random.default_rng([demo.parameters.seed, 79])
    p = demo.parcels
    per_parcel = np.bincount(demo.buildings.parcel, minlength=len(p))
    addressed = p.intravilan & (p.address >= 0)
    one = np.flatnonzero(addressed & (per_parcel == 1))
    several = np.flatnonzero(addressed & (per_parcel >= 2))
    outside = np.flatnonzero(~p.intravilan)
    picks = [
        rng.choice(one, 14, replace=False),
        rng.choice(several, 4, replace=False),
        rng.choice(outside, 2, replace=False),
    ]
    standard = np.sort(np.concatenate(picks))
    rest = np.setdiff1d(one, standard)
    older = np.sort(rng.choice(rest, 2, replace=False))
    corners = np.asarray([len(g.exterior.coords) for g in p.geom[rest]])
    four = np.setdiff1d(rest[corners == 5], older)
    return standard, older, int(four[rng.integers(0, four.size)])
