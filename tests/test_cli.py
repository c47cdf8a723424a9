"""``matgen`` command line on a user's own images."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from matgen.io import save_image


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "matgen.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_morphology_command_on_a_disk_image(tmp_path):
    yy, xx = np.mgrid[0:256, 0:256] - 128
    image = np.where(np.hypot(yy, xx) <= 70, 20, 220).astype(np.uint8)  # a dark pore
    save_image(tmp_path / "disk.png", image)
    out = tmp_path / "m.csv"
    result = run(
        "morphology",
        str(tmp_path / "disk.png"),
        "--pixel-size",
        "0.5",
        "--smooth-sigma",
        "0",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    row = pd.read_csv(out).iloc[0]
    assert row["porosity"] == np.mean(np.hypot(yy, xx) <= 70)
    expected_ssa = 2 * np.pi * 70 * 0.5 / (256 * 0.5) ** 2
    assert abs(row["specific_surface_area"] - expected_ssa) / expected_ssa < 0.02


def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path):
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4, 5)))
    out = tmp_path / "m.csv"
    result = run("morphology", str(tmp_path / "cube.npy"), "--pixel-size", "1", "--out", str(out))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    cube = tmp_path / "cube.npy"
    expected = "expected a 2-D grey-level image or a 3-D volume, got shape (2, 3, 4, 5)"
    assert last == f"matgen: error: {cube}: {expected}"
    assert not out.exists()


def test_ingest_and_tile_commands(tmp_path, rng):
    for i in range(2):
        save_image(tmp_path / f"a{i}.tif", rng.integers(0, 255, (40, 40), dtype=np.uint8))
    (tmp_path / "s.tsv").write_text("path\tdomain\tpixel_size\na0.tif\tsem\t1\na1.tif\tsem\t1\n")
    assert (
        run(
            "ingest", str(tmp_path / "s.tsv"), "--domain", "sem", "--out", str(tmp_path / "ing")
        ).returncode
        == 0
    )
    result = run(
        "tile",
        str(tmp_path / "ing"),
        "--size",
        "20",
        "--stride",
        "-3",
        "--out",
        str(tmp_path / "t"),
    )
    assert result.returncode == 2 and "stride must be positive" in result.stderr
    assert not (tmp_path / "t").exists()
    assert (
        run(
            "tile",
            str(tmp_path / "ing"),
            "--size",
            "20",
            "--stride",
            "10",
            "--out",
            str(tmp_path / "t"),
        ).returncode
        == 0
    )
    assert np.load(tmp_path / "t/tiles.npy").shape == (2 * 9, 1, 20, 20)


def test_cli_bad_threshold_is_one_line(tmp_path):
    save_image(tmp_path / "a.png", np.zeros((16, 16), np.uint8))
    result = run(
        "morphology",
        str(tmp_path / "a.png"),
        "--pixel-size",
        "1",
        "--threshold",
        "dark",
        "--out",
        str(tmp_path / "m.csv"),
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "matgen: error: threshold must be 'otsu' or a number, got 'dark'"
    )


def _tiny_models(tmp_path):
    import torch

    from matgen.checkpoint import save_checkpoint
    from matgen.models.cyclegan import build_cyclegan
    from matgen.models.stylegan2 import Generator

    torch.manual_seed(0)
    cfg = dict(
        resolution=8, z_dim=8, w_dim=8, n_mapping=1, channel_base=32, channel_max=8, img_channels=1
    )
    save_checkpoint(
        tmp_path / "sg.pt",
        step=1,
        model_config=cfg,
        include_rng=False,
        G_ema=Generator(**cfg).state_dict(),
        family="stylegan2",
    )
    cg = dict(
        in_ch=1,
        out_ch=1,
        ngf=4,
        n_blocks=1,
        n_downsampling=1,
        scale=4,
        ndf=4,
        n_layers_low=1,
        n_layers_high=2,
    )
    nets = build_cyclegan(cg)
    save_checkpoint(
        tmp_path / "cg.pt",
        step=1,
        model_config=cg,
        include_rng=False,
        family="cyclegan",
        tile_size=8,
        **{k: n.state_dict() for k, n in nets.items()},
    )


def test_sample_and_translate_commands(tmp_path):
    _tiny_models(tmp_path)
    result = run(
        "sample",
        str(tmp_path / "sg.pt"),
        "-n",
        "5",
        "--seed",
        "7",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "samples"),
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "samples/table.csv")
    assert list(table.seed) == [7, 8, 9, 10, 11]
    assert (tmp_path / "samples" / table.path[0]).stat().st_size > 0

    save_image(
        tmp_path / "ct.png", (np.random.default_rng(0).random((20, 12)) * 255).astype(np.uint8)
    )
    result = run(
        "translate",
        str(tmp_path / "cg.pt"),
        str(tmp_path / "ct.png"),
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "sem"),
    )
    assert result.returncode == 0, result.stderr
    from matgen.io import read_image

    assert read_image(tmp_path / "sem/ct.png").shape == (80, 48)  # x4, 8-px tiles, edges shifted

    wrong = run("sample", str(tmp_path / "cg.pt"), "-n", "2", "--out", str(tmp_path / "x"))
    assert wrong.returncode == 2
    assert (
        wrong.stderr.strip()
        .splitlines()[-1]
        .endswith("cg.pt: not a stylegan2 model checkpoint (family 'cyclegan')")
    )
    missing = run(
        "translate",
        str(tmp_path / "cg.pt"),
        str(tmp_path / "nope.png"),
        "--out",
        str(tmp_path / "y"),
    )
    assert missing.returncode == 2 and "nope.png" in missing.stderr


def test_help_is_plain_text(capsys):
    from matgen.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "matgen COMMAND --help" in text and "detect-vacancies" in text
    assert "``" not in text and ":func:" not in text
