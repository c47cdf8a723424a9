"""Training helpers: a killed-and-resumed run equals an uninterrupted one, bit for bit."""

import csv

import numpy as np
import pytest
import torch

from matgen.train import CSVLogger, load_checkpoint, save_checkpoint, seed_everything


def toy_training(ckpt, log_path, steps, stop_at=None, every=5):
    """Fit y = 3x - 1 with noisy minibatches; checkpoint every ``every`` steps."""
    seed_everything(0)
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    start = 0
    state = load_checkpoint(ckpt)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = state["step"]
    log = CSVLogger(log_path, resume_step=start if state else None)
    for step in range(start + 1, steps + 1):
        x = torch.randn(16, 1)
        y = 3 * x - 1 + 0.1 * torch.randn(16, 1) + float(np.random.normal(0, 0.01))
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        log.log(step=step, loss=f"{loss.item():.8f}")
        if step % every == 0:
            save_checkpoint(
                ckpt,
                step=step,
                model_config={"in": 1, "out": 1},
                model=model.state_dict(),
                optimizer=opt.state_dict(),
            )
        if stop_at is not None and step == stop_at:
            return model  # "killed" after step stop_at, past the last checkpoint
    return model


def test_resume_reproduces_uninterrupted_run(tmp_path):
    full = toy_training(tmp_path / "a.pt", tmp_path / "a.csv", steps=100)
    toy_training(tmp_path / "b.pt", tmp_path / "b.csv", steps=100, stop_at=63)  # last ckpt: 60
    resumed = toy_training(tmp_path / "b.pt", tmp_path / "b.csv", steps=100)
    for p, q in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    # and the model learnt the toy task
    assert abs(full.weight.item() - 3) < 0.05 and abs(full.bias.item() + 1) < 0.05


def test_checkpoint_holds_config_step_and_rng(tmp_path):
    toy_training(tmp_path / "c.pt", tmp_path / "c.csv", steps=10)
    state = torch.load(tmp_path / "c.pt", weights_only=False)
    assert state["step"] == 10 and state["model_config"] == {"in": 1, "out": 1}
    assert {"python", "numpy", "torch"} <= set(state["rng"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "c.pt"]  # no temp files
    rows = list(csv.DictReader(open(tmp_path / "c.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 11))


def test_seed_everything_is_deterministic():
    rng = seed_everything(5)
    a = (rng.random(), np.random.rand(), torch.rand(1).item())
    rng = seed_everything(5)
    assert a == (rng.random(), np.random.rand(), torch.rand(1).item())


def test_seed_everything_asks_for_deterministic_algorithms_without_loading_inductor():
    """A fresh process, as a workflow stage is: the flag is set (warn-only) and TorchInductor's
    config, ~3 s to import and read only by torch.compile, stays unloaded."""
    import subprocess
    import sys

    code = (
        "import sys, torch; from matgen.util import seed_everything; seed_everything(0); "
        "print(torch.are_deterministic_algorithms_enabled(), "
        "torch.is_deterministic_algorithms_warn_only_enabled(), "
        "'torch._inductor.config' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "False"]


def test_provenance_of_a_stage_without_torch_does_not_load_torch(tmp_path):
    """A figure or tiling stage never touched torch: its provenance says CPU and does not pay
    torch's import to find out."""
    import json
    import subprocess
    import sys

    out = tmp_path / "p.json"
    code = (
        "import sys, time; from matgen.provenance import write_provenance; "
        f"write_provenance({str(out)!r}, stage='s', params={{}}, started=time.time()); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
    record = json.loads(out.read_text())
    assert record["device"].startswith("cpu:") and record["cpu_amp_arithmetic"] is None
    # a stage that loaded torch says what arithmetic ``amp`` trained in here
    code = code.replace("import sys,", "import torch, sys,")
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    from matgen.util import cpu_bfloat16_pays

    kind = "bfloat16" if cpu_bfloat16_pays() else "float32"
    assert json.loads(out.read_text())["cpu_amp_arithmetic"].startswith(kind + " (")


def test_precise_batch_norm_replaces_stale_running_statistics_by_the_final_weights_batches():
    from matgen.train.loop import recalibrate_batch_norm

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).eval()
    net.requires_grad_(False)
    net[1].running_mean.fill_(5.0)  # left by weights that have moved on since
    net[1].running_var.fill_(9.0)
    batches = [torch.randn(16, 3) * 2 + 1 for _ in range(6)]
    x = torch.randn(256, 3) * 2 + 1
    stale = float(net(x).mean(0).abs().min())
    feed = iter(batches)
    recalibrate_batch_norm(net, lambda: net(next(feed)), len(batches))
    features = [net[0](b) for b in batches]
    mean = torch.stack([f.mean(0) for f in features]).mean(0)
    var = torch.stack([f.var(0) for f in features]).mean(0)  # unbiased, as BatchNorm keeps it
    assert torch.allclose(net[1].running_mean, mean, atol=1e-5)
    assert torch.allclose(net[1].running_var, var, atol=1e-4)
    assert net[1].momentum == 0.1 and not net.training  # its settings and mode are back
    # evaluation mode now centres a typical batch, as training mode does; it did not before
    assert float(net(x).mean(0).abs().max()) < 0.3 and stale > 1.0
    # 0 batches: nothing touched
    before = net[1].running_mean.clone()
    recalibrate_batch_norm(net, lambda: net(torch.randn(16, 3) + 50), 0)
    assert torch.equal(net[1].running_mean, before)


@pytest.mark.parametrize("fixed, granted, used", [(None, 2, 2), (2, 1, 2), (2, 2, 2), (1, 3, 3)])
def test_a_stage_runs_with_the_threads_its_params_fix_whatever_snakemake_grants(
    tmp_path, fixed, granted, used
):
    """A rule whose numbers depend on its thread count (the StyleGAN2's convolutions add up in
    another order on two threads) names it in its params: under `--cores 1` Snakemake grants 1,
    and the run still uses the config's count, so the same config gives the same numbers; a
    cluster profile's set-threads may give it more."""
    import json
    from types import SimpleNamespace

    from snakemake.iocontainers import Log, Params

    from matgen.workflow import run_stage

    params = {"seed": 3} if fixed is None else {"seed": 3, "threads": fixed}
    job = SimpleNamespace(
        log=Log([str(tmp_path / "stage.log")]),
        params=Params(fromdict=params),
        output=[str(tmp_path / "out.txt")],
        threads=granted,
        rule="some_stage",
    )
    seen = run_stage(job, lambda: torch.get_num_threads())
    assert seen == used
    provenance = json.loads((tmp_path / "out.txt.provenance.json").read_text())
    assert provenance["threads"] == used and provenance["seed"] == 3


def test_a_stage_records_the_cpu_seconds_it_used_and_the_job_table_reads_them(tmp_path):
    """Snakemake's benchmark files sample a job's CPU every 30 s after its first 15 s, so a 40-s
    U-Net job read 15 CPU-s; run_stage records the stage's own CPU seconds in its provenance,
    and job_times reads them back per run, study and job."""
    import json
    import os
    import time
    from types import SimpleNamespace

    from snakemake.iocontainers import Log, Params

    from matgen.provenance import job_times
    from matgen.workflow import run_stage

    def burn(seconds: float) -> None:  # CPU on this thread, not sleep: a sleeping stage uses none
        start = time.thread_time()
        while time.thread_time() - start < seconds:
            pass

    def job(run, study, where, rule, seconds):
        out = tmp_path / run / study / where / "out.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / run / "logs").mkdir(exist_ok=True)
        spec = SimpleNamespace(log=Log([str(tmp_path / run / "logs" / f"{rule}.log")]),
                               params=Params(fromdict={}), output=[str(out)], threads=1,
                               rule=rule)  # fmt: skip
        run_stage(spec, burn, seconds=seconds)
        return json.loads((out.parent / "out.txt.provenance.json").read_text())

    record = job("study", "porous", "stylegan2", "train_stylegan2", 0.3)
    # the process's every thread counts (a torch pool left spinning too), never more than its cores
    assert 0.3 <= record["cpu_time_s"] <= record["wall_time_s"] * os.cpu_count() + 0.05
    job("study", "segmentation", "unet/real8", "train_segmenter_mix", 0.1)
    job("seeds/seed1", "porous", "stylegan2", "train_stylegan2", 0.1)
    (tmp_path / "study" / "porous" / "old.txt.provenance.json").write_text(
        json.dumps({"stage": "tile", "wall_time_s": 1.0})  # no CPU seconds recorded: left out
    )
    table = job_times(tmp_path).set_index(["run", "study", "job"])
    assert sorted(table.index) == [("seeds/seed1", "porous", "stylegan2"),
                                   ("study", "porous", "stylegan2"),
                                   ("study", "segmentation", "unet/real8")]  # fmt: skip
    assert table.loc[("study", "porous", "stylegan2"), "cpu_s"] >= 0.3
    assert table.loc[("study", "segmentation", "unet/real8"), "stage"] == "train_segmenter_mix"
    assert set(table.threads) == {1}
