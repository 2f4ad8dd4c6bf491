"""Feed-forward training: data loading, checkpoints/resume, NaN stop, add-style, DDP."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from painterly.cli import main
from painterly.errors import PainterlyError
from painterly.models.io import load_model
from painterly.models.transformer import TransformerConfig
from painterly.training.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from painterly.training.common import Trainer, TrainingDiverged, TrainOptions, lr_schedule
from painterly.training.data import ContentDataset
from painterly.training.distributed import DistInfo, step_generator
from painterly.training.objectives.feedforward import FeedForwardConfig, default_checkpoint, train_feedforward

ASSETS = Path(__file__).resolve().parent.parent / "painterly" / "assets"
STYLES = [ASSETS / "styles" / "udnie.jpg", ASSETS / "styles" / "the-scream.jpg"]
TINY = TransformerConfig(channels=(8, 8, 8), num_residual=1, stem_kernel=3)
CFG = FeedForwardConfig(style_size=48, style_layers={"relu1_1": 1.0, "relu2_1": 1.0}, content_layers={"relu2_1": 1})


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def data(tmp_path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        arr = (rng.random((40 + 4 * i, 48, 3)) * 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / ("sub" if i % 2 else "") / f"p{i}.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    (folder / "empty.png").write_bytes(b"")
    return folder


def _opts(tmp_path: Path, **kw) -> TrainOptions:
    base = dict(steps=4, batch_size=2, size=32, progress=False, checkpoint_every=0, log_every=1,
                log_csv=str(tmp_path / "log.csv"), device="cpu", fp32=True)
    base.update(kw)
    return TrainOptions(**base)


def _train(tmp_path: Path, data: Path, out: str = "m.safetensors", styles=STYLES, **kw):
    opts = kw.pop("options", None) or _opts(tmp_path)
    return train_feedforward(styles, data, tmp_path / out, CFG, opts, encoder_weights=None, model_config=TINY, **kw)


def _log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# -- data ------------------------------------------------------------------------------------


def test_dataset_skips_unreadable_files_and_is_deterministic(data):
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        ds = ContentDataset(data, size=16, scale=(1.0, 2.0))
    assert len(ds) == 5 and len(ds.skipped) == 2
    a = ds.sample(3, step_generator(0, 7), step=7)
    b = ds.sample(3, step_generator(0, 7), step=7)
    c = ds.sample(3, step_generator(0, 8), step=8)
    assert a.shape == (3, 3, 16, 16) and a.dtype == torch.float32
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    # DDP sharding: in one step the ranks see disjoint images; over an epoch every image once
    seen = [i for r in range(2) for i in ds.indices(1, step=0, dist=DistInfo(r, 2))]
    seen += [i for r in range(2) for i in ds.indices(1, step=1, dist=DistInfo(r, 2))]
    assert len(set(seen[:2])) == 2 and len(set(seen)) == 4
    assert ds.fixed_batch(2).shape == (2, 3, 16, 16)


def test_dataset_without_readable_images(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"junk")
    with pytest.raises(PainterlyError, match="no readable training images"), pytest.warns(UserWarning):
        ContentDataset(tmp_path, size=16)
    with pytest.raises(PainterlyError, match="does not exist"):
        ContentDataset(tmp_path / "nope", size=16)


# -- training, checkpoints, resume ------------------------------------------------------------


def test_train_writes_model_log_samples(tmp_path, data):
    opts = _opts(tmp_path, sample_every=2, checkpoint_every=2)
    with pytest.warns(UserWarning, match="skipped 2"):
        summary = _train(tmp_path, data, options=opts)
    assert summary.result.step == 4 and summary.result.stop_reason == "done"
    model = load_model(summary.model_path)
    assert model.names == ["udnie", "the-scream"] and model.styles[1].artist == "Edvard Munch"
    assert model.training["steps"] == 4 and model.training["skipped_images"] == 2
    assert {"content", "style", "tv", "total"} <= set(model.training["final_losses"])
    rows = _log(tmp_path / "log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(float(r["total"]) > 0 for r in rows)
    assert sorted(p.name for p in (tmp_path / "m-samples").iterdir()) == ["step_000002.png", "step_000004.png"]
    assert read_checkpoint(default_checkpoint(tmp_path / "m.safetensors"))[1]["step"] == 4


def test_resume_continues_exactly(tmp_path, data):
    straight = tmp_path / "a"
    _train(straight, data, options=_opts(straight, steps=6))
    split = tmp_path / "b"
    _train(split, data, options=_opts(split, steps=3))
    _train(split, data, options=_opts(split, steps=6, resume=True))
    la, lb = _log(straight / "log.csv"), _log(split / "log.csv")
    assert [r["step"] for r in lb] == [str(i) for i in range(1, 7)]
    for ra, rb in zip(la, lb, strict=True):
        for key in ("content", "style", "tv", "total"):
            assert float(ra[key]) == pytest.approx(float(rb[key]), rel=1e-6, abs=1e-9), (ra["step"], key)
    ma, mb = load_model(straight / "m.safetensors"), load_model(split / "m.safetensors")
    for (k, va), vb in zip(ma.net.state_dict().items(), mb.net.state_dict().values(), strict=True):
        torch.testing.assert_close(va, vb, rtol=1e-5, atol=1e-6, msg=k)


def test_resume_refuses_other_settings_and_missing_checkpoint(tmp_path, data):
    with pytest.raises(PainterlyError, match="no checkpoint"):
        _train(tmp_path, data, options=_opts(tmp_path, resume=True))
    _train(tmp_path, data, options=_opts(tmp_path, steps=2))
    with pytest.raises(PainterlyError, match="different settings"):
        _train(tmp_path, data, options=_opts(tmp_path, steps=4, resume=True, batch_size=3))


def test_checkpoint_round_trip_restores_optimizer_and_rng(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    torch.manual_seed(123)
    save_checkpoint(tmp_path / "c.safetensors", model, opt, 17, {"config": {"x": 1}})
    expected = torch.rand(3)
    other = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(other.parameters(), lr=0.5)
    state = load_checkpoint(tmp_path / "c.safetensors", other, opt2)
    assert state.step == 17 and state.meta == {"config": {"x": 1}}
    assert torch.equal(torch.rand(3), expected)
    assert torch.equal(other.weight, model.weight) and opt2.param_groups[0]["lr"] == 0.1
    s1, s2 = opt.state_dict()["state"][0], opt2.state_dict()["state"][0]
    assert torch.equal(s1["exp_avg_sq"], s2["exp_avg_sq"]) and float(s1["step"]) == float(s2["step"])
    (tmp_path / "bad.safetensors").write_bytes(b"nonsense")
    with pytest.raises(PainterlyError, match="corrupt"):
        load_checkpoint(tmp_path / "bad.safetensors", other)


class _Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2))


def _toy_trainer(tmp_path, step_fn, **kw):
    model = _Toy()
    opts = TrainOptions(steps=kw.pop("steps", 6), progress=False, checkpoint_every=1, device="cpu", fp32=True,
                        channels_last=False, **kw)
    return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), step_fn, opts, tmp_path / "ck.safetensors")


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path):
    def step_fn(ctx):
        loss = ctx.model.w.sum()
        return {"total": loss * float("nan") if ctx.step == 3 else loss}

    trainer = _toy_trainer(tmp_path, step_fn)
    with pytest.raises(TrainingDiverged, match=r"NaN/inf at step 4.*step 3"):
        trainer.run()
    model = _Toy()
    assert load_checkpoint(tmp_path / "ck.safetensors", model).step == 3
    assert torch.isfinite(model.w).all() and torch.allclose(model.w, torch.full((2,), 0.7))


def test_sigint_saves_and_stops(tmp_path):
    def step_fn(ctx):
        if ctx.step == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return {"total": ctx.model.w.sum()}

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in a background job
    result = _toy_trainer(tmp_path, step_fn, steps=100).run()
    assert result.stop_reason == "interrupted" and result.step == 2
    assert read_checkpoint(tmp_path / "ck.safetensors")[1]["step"] == 2
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back


def test_time_limit_stops_cleanly(tmp_path):
    result = _toy_trainer(tmp_path, lambda ctx: {"total": ctx.model.w.sum()}, steps=100, time_limit=0.0).run()
    assert result.stop_reason == "time_limit" and result.step == 1
    assert read_checkpoint(tmp_path / "ck.safetensors")[1]["step"] == 1


# -- add-style -------------------------------------------------------------------------------


def test_add_style_keeps_existing_styles_bit_identical(tmp_path, data):
    base = _train(tmp_path, data, options=_opts(tmp_path, steps=2)).model_path
    added = tmp_path / "added"
    summary = train_feedforward([ASSETS / "styles" / "mona-lisa.jpg"], data, added / "m2.safetensors", CFG,
                                _opts(added, steps=3, lr=0.05), base=base, encoder_weights=None)
    assert summary.trained_styles == ["mona-lisa"]
    a, b = load_model(base), load_model(summary.model_path)
    assert b.names == ["udnie", "the-scream", "mona-lisa"]
    sa, sb = a.net.state_dict(), b.net.state_dict()
    for key, va in sa.items():
        vb = sb[key]
        if key.endswith(("gamma", "beta")):
            assert torch.equal(vb[:2], va) and not torch.equal(vb[2], va.mean(0)), key
        else:
            assert torch.equal(vb, va), key
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        for i in range(2):
            assert torch.equal(a.net(x, a.net.style_vector(i)), b.net(x, b.net.style_vector(i)))
    assert b.training["added"][0]["styles"] == ["mona-lisa"]
    with pytest.raises(PainterlyError, match="already has"):
        train_feedforward([STYLES[0]], data, tmp_path / "m3.safetensors", CFG, _opts(tmp_path), base=base,
                          encoder_weights=None)


def test_lr_schedule():
    assert lr_schedule(0.1, 100) is None  # constant: the optimizer's own rate
    warm = lr_schedule(0.1, 100, warmup=4)
    assert [round(warm(s), 4) for s in (0, 1, 3, 50)] == [0.025, 0.05, 0.1, 0.1]
    cos = lr_schedule(0.1, 100, "cosine", warmup=2)
    assert cos(0) == pytest.approx(0.05) and cos(50) == pytest.approx(0.05) and cos(100) == pytest.approx(0.0)
    assert cos(10) > cos(60) > cos(90) > 0
    with pytest.raises(PainterlyError, match="schedule"):
        lr_schedule(0.1, 10, "step")


def test_cosine_time_schedule_decays_over_the_time_limit():
    at = lr_schedule(0.1, 10, "cosine-time", warmup=2)
    assert at(0, 0.0) == pytest.approx(0.05) and at(5, 0.0) == pytest.approx(0.1)
    assert at(5, 0.5) == pytest.approx(0.05) and at(10**6, 0.5) == pytest.approx(0.05)  # steps do not matter
    assert at(5, 1.0) == pytest.approx(0.0) and at(5, 1.7) == pytest.approx(0.0)
    with pytest.raises(PainterlyError, match="time limit"):
        at(5, None)
    with pytest.raises(PainterlyError, match="time-limit"):  # the trainer refuses it without a time limit
        _toy_trainer(Path("."), lambda ctx: {}, lr_schedule="cosine-time")


def test_trainer_passes_the_time_spent_to_the_schedule(tmp_path):
    seen = []

    def lr_at(step, progress):
        seen.append(progress)
        return 0.1

    model = _Toy()
    opts = TrainOptions(steps=3, progress=False, checkpoint_every=0, device="cpu", fp32=True, channels_last=False,
                        time_limit=1000.0, lr=0.1)
    Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda ctx: {"total": ctx.model.w.sum()}, opts,
            tmp_path / "ck.safetensors", lr_at=lr_at).run()
    assert len(seen) == 3 and 0.0 <= seen[0] <= seen[1] <= seen[2] < 0.01


def test_schedule_keeps_each_param_groups_ratio(tmp_path):
    """A group at 10x the base rate (the meta network's shared base) stays at 10x under a schedule."""
    a, b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2))
    model = nn.Module()
    model.register_parameter("a", a)
    model.register_parameter("b", b)
    opt = torch.optim.SGD([{"params": [a], "lr": 0.01}, {"params": [b], "lr": 0.1}])
    opts = TrainOptions(steps=2, progress=False, checkpoint_every=0, device="cpu", fp32=True, channels_last=False,
                        lr=0.01)
    Trainer(model, opt, lambda ctx: {"total": (ctx.model.a + ctx.model.b).sum()}, opts, tmp_path / "ck.safetensors",
            lr_at=lambda step, progress: 0.005).run()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.005, 0.05])
    assert torch.allclose(b.detach(), 1 - 2 * 0.05 * torch.ones(2))


def test_training_follows_the_lr_schedule(tmp_path, data):
    _train(tmp_path, data, options=_opts(tmp_path, steps=4, lr=0.01, lr_schedule="cosine", warmup_steps=2))
    lrs = [float(r["lr"]) for r in _log(tmp_path / "log.csv")]
    sched = lr_schedule(0.01, 4, "cosine", 2)
    assert lrs == pytest.approx([sched(s) for s in range(4)], rel=1e-4)


def test_init_continues_training_every_weight(tmp_path, data):
    first = _train(tmp_path, data, options=_opts(tmp_path, steps=2)).model_path
    more = tmp_path / "more"
    summary = train_feedforward(list(reversed(STYLES)), data, more / "m2.safetensors", CFG,
                                _opts(more, steps=3), init=first, encoder_weights=None)
    a, b = load_model(first), load_model(summary.model_path)
    assert b.names == a.names == ["udnie", "the-scream"]  # the model's order, whatever the order given
    sa, sb = a.net.state_dict(), b.net.state_dict()
    assert all(not torch.equal(sa[k], sb[k]) for k in ("stem.conv.weight", "head.weight", "stem.norm.gamma"))
    assert b.training["steps"] == 2 and b.training["continued"][0]["steps"] == 3
    with pytest.raises(PainterlyError, match="give exactly its styles"):
        train_feedforward([STYLES[0]], data, more / "m3.safetensors", CFG, _opts(more), init=first,
                          encoder_weights=None)
    with pytest.raises(PainterlyError, match="not both"):
        train_feedforward(STYLES, data, more / "m3.safetensors", CFG, _opts(more), init=first, base=first,
                          encoder_weights=None)


# -- command line ----------------------------------------------------------------------------


def test_cli_train_errors(tmp_path, data, capsys):
    out = ["--data", str(data), "--out", str(tmp_path / "m.safetensors")]
    assert main(["train", "--add-style", str(STYLES[0]), *out]) == 2
    assert "--add-style needs --base" in capsys.readouterr().err
    assert main(["train", "--style", "no-such-painting", *out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-painting" in err
    assert main(["train", "--style", str(STYLES[0]), "--data", str(data), "--out", str(tmp_path / "m.pt")]) == 2
    capsys.readouterr()
    assert main(["train", "--init", "shipped", "--base", "shipped", "--style", "udnie", *out]) == 2
    assert "not both" in capsys.readouterr().err


def test_cli_train_runs(tmp_path, data, capsys):
    out = tmp_path / "cli.safetensors"
    code = main(["train", "--style", "udnie", "--data", str(data), "--out", str(out), "--steps", "2", "--size", "32",
                 "--batch-size", "1", "--preset", "slim", "--style-size", "64", "--quiet", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "warning: skipped 2 unreadable" in captured.err
    assert load_model(out).names == ["udnie"] and (tmp_path / "cli.log.csv").is_file()


# -- distributed -----------------------------------------------------------------------------

DDP_SCRIPT = textwrap.dedent("""
    import sys, torch
    from pathlib import Path
    from painterly.models.transformer import TransformerConfig
    from painterly.training.common import TrainOptions
    from painterly.training.distributed import current_dist
    from painterly.training.objectives.feedforward import FeedForwardConfig, train_feedforward
    torch.set_num_threads(1)
    out, data, styles = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    cfg = FeedForwardConfig(style_size=48, style_layers={"relu1_1": 1.0}, content_layers={"relu1_1": 1.0})
    opts = TrainOptions(steps=3, batch_size=2, size=32, progress=False, checkpoint_every=0, device="cpu", fp32=True,
                        log_every=1,
                        log_csv=str(out / "log.csv"))
    s = train_feedforward(styles, data, out / "m.safetensors", cfg, opts, encoder_weights=None,
                          model_config=TransformerConfig(channels=(4, 4, 4), num_residual=1, stem_kernel=3))
    import torch.distributed  # group destroyed by now; write this rank's view of the weights
    rank = int(__import__("os").environ["RANK"])
    (out / f"rank{rank}.txt").write_text(repr(s.model_path) + " " + str(s.result.step))
    torch.save({k: v for k, v in s.net.state_dict().items()}, out / f"weights{rank}.pt")
""")


def test_ddp_two_processes_on_cpu(tmp_path, data):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), str(out), str(data), *map(str, STYLES)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "rank0.txt").read_text() == f"'{out / 'm.safetensors'}' 3"
    assert (out / "rank1.txt").read_text() == "None 3"  # only rank 0 writes the model
    w0, w1 = (torch.load(out / f"weights{r}.pt", weights_only=True) for r in (0, 1))
    saved = load_model(out / "m.safetensors")  # gradients were all-reduced: both ranks hold the same weights
    for key, value in w0.items():
        assert torch.equal(value, w1[key]), key
        assert torch.equal(value, saved.net.state_dict()[key]), key
    assert load_model(out / "m.safetensors").training["world_size"] == 2
    assert [r["step"] for r in _log(out / "log.csv")] == ["1", "2", "3"]
