"""Keep the README's results generated: the headline table and figure thumbnails of a run.

``make readme`` calls :func:`update_readme` after ``make study``: the blocks between
``<!-- headline:start -->`` / ``<!-- headline:end -->`` and ``<!-- thumbnails:start -->`` /
``<!-- thumbnails:end -->`` are replaced, so no number in the README is typed by hand.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import InputError
from ..io import atomic_path
from ..provenance import git_commit

# (figure PNG under results/, caption) of the thumbnails, one per study and kind of result
THUMBNAILS = [
    ("porous/figures/stylegan2_samples.png", "porous: real vs StyleGAN2 tiles"),
    ("porous/figures/translation.png", "porous: micro-CT → SEM vs the truth"),
    ("stem/figures/table1.png", "STEM: F1 per training set"),
    ("polysilicon/figures/samples.png", "polysilicon: real vs generated grains"),
    ("segmentation/figures/pairs.png", "segmentation: generated image/mask pairs"),
]


def _replace_block(text: str, name: str, body: str, path: Path) -> str:
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise InputError(f"{path}: no <!-- {name}:start --> ... <!-- {name}:end --> block")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def _commit_of(provenance: Path, repo: Path) -> str:
    """The git commit a result came from: its provenance JSON's, else the checkout's HEAD."""
    if provenance.is_file():
        commit = json.loads(provenance.read_text()).get("git_commit")
        if commit:
            return str(commit)[:12]
    return git_commit(repo)[:12]


def update_readme(
    results: str | os.PathLike,
    readme: str | os.PathLike,
    image_dir: str | os.PathLike,
    width: int = 320,
) -> None:
    """Copy the headline table into ``readme`` with the commit it came from (from its
    provenance JSON) — ``results/seeds/summary/headline.md`` of ``make seeds`` where it exists,
    else ``results/summary/headline.md`` of ``make study`` — and ``width``-px thumbnails of the
    study's key figures into ``image_dir`` (linked from it), from the run behind the table:
    ``make seeds``' offset 0 (``make study``'s models), else ``make study``'s."""
    from PIL import Image

    results, readme, image_dir = Path(results), Path(readme), Path(image_dir)
    summary, source = results / "seeds/summary", "`make seeds` (every model on each seed of "
    source += "config/seeds.yaml, embedded default; intervals over seeds)"
    figures = results / "seeds/seed0"
    if not (summary / "headline.md").is_file():
        summary, source = results / "summary", "`make study` (one seed, embedded default)"
        figures = results
    headline = summary / "headline.md"
    if not headline.is_file():
        raise InputError(f"{headline}: not found; run `make study` or `make seeds` first")
    commit = _commit_of(summary / "headline.csv.provenance.json", readme.parent)
    text = _replace_block(
        readme.read_text(),
        "headline",
        f"From {source} at commit `{commit}`:\n\n{headline.read_text()}",
        readme,
    )
    image_dir.mkdir(parents=True, exist_ok=True)
    cells = []
    for rel, caption in THUMBNAILS:
        source = figures / rel
        if not source.is_file():
            continue
        image = Image.open(source).convert("RGB")
        image.thumbnail((2 * width, 8 * width))  # shown at ``width``; sharp when opened
        target = image_dir / source.name.replace(".png", f"_{Path(rel).parts[0]}.png")
        with atomic_path(target, suffix=".png") as tmp:
            image.save(tmp, format="PNG", optimize=True)
        link = os.path.relpath(target, readme.parent)
        cells.append(
            f'<a href="{link}"><img src="{link}" width="{width}" '
            f'title="{caption}" alt="{caption}"></a>'
        )
    text = _replace_block(text, "thumbnails", "\n".join(cells) + "\n", readme)
    with atomic_path(readme, suffix=".md") as tmp:
        tmp.write_text(text)
