"""The shared training loop driven by an Objective, and the distillation objective on it."""

from __future__ import annotations

import argparse
import random
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from painterly.cli.train_options import LoopDefaults, add_loop_options, loop_options
from painterly.errors import PainterlyError
from painterly.models.io import StylizationModel, load_model, save_model
from painterly.models.transformer import TransformerConfig, TransformerNet
from painterly.styles import StyleInfo
from painterly.training import loop
from painterly.training.checkpoint import read_checkpoint
from painterly.training.loop import Objective, StepContext, train
from painterly.training.objectives.distill import DistillConfig, distill, random_style_vectors, student_config
from painterly.training.options import TrainOptions

pytestmark = pytest.mark.usefixtures("one_thread")


class Regression(Objective):
    """Fit y = 3x - 1 with a linear layer: tiny, deterministic, enough to exercise the loop."""

    def __init__(self) -> None:
        self.finished: list[int] = []

    def build(self, device, dist) -> nn.Module:
        return nn.Linear(1, 1)

    def losses(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        x = torch.randn(8, 1, generator=ctx.generator)
        err = (ctx.model(x) - (3 * x - 1)).pow(2).mean()
        return {"mse": err, "total": err}

    def config(self):
        return {"kind": "regression"}

    def finish(self, model, run):
        self.finished.append(run.result.step)
        return model.weight.item()


def _opts(tmp_path, steps: int, **kw) -> TrainOptions:
    return TrainOptions(steps=steps, lr=0.05, device="cpu", fp32=True, progress=False, checkpoint_every=0,
                        log_every=1, log_csv=str(tmp_path / "log.csv"), **kw)


def test_objective_trains_and_resumes_exactly(tmp_path):
    straight = train(Regression(), _opts(tmp_path, 6), tmp_path / "a.ckpt")
    assert straight.result.step == 6 and straight.result.stop_reason == "done"
    assert 0 < straight.output < 3  # moving towards 3
    train(Regression(), _opts(tmp_path, 3), tmp_path / "b.ckpt")
    obj = Regression()
    resumed = train(obj, _opts(tmp_path, 6, resume=True), tmp_path / "b.ckpt")
    assert obj.finished == [6] and resumed.output == straight.output
    assert read_checkpoint(tmp_path / "b.ckpt")[1]["meta"]["config"] == {"kind": "regression"}


def test_loop_leaves_process_state_alone(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(loop, "keep_freed_memory", lambda: calls.append(1))
    train(Regression(), _opts(tmp_path, 1), tmp_path / "a.ckpt")
    assert calls == []  # the allocator is only tuned on request (the CLI asks)
    train(Regression(), _opts(tmp_path, 1, keep_freed_memory=True), tmp_path / "b.ckpt")
    assert calls == [1]
    torch.manual_seed(1234)
    random.seed(99)
    expected = torch.rand(3), random.random()
    torch.manual_seed(1234)
    random.seed(99)
    train(Regression(), _opts(tmp_path, 2, seed=5), tmp_path / "c.ckpt")
    train(Regression(), _opts(tmp_path, 3, seed=5, resume=True), tmp_path / "c.ckpt")
    assert torch.equal(torch.rand(3), expected[0]) and random.random() == expected[1]  # the caller's RNG state
    old = torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32
    with loop._fast_backend_flags(torch.device("cuda")):
        assert torch.backends.cudnn.benchmark
    assert (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32) == old


# -- shared CLI options -----------------------------------------------------------------------


def _parse(argv):
    p = argparse.ArgumentParser()
    add_loop_options(p, LoopDefaults(steps=7))
    return p.parse_args(argv)


def test_old_option_spellings_are_aliases(tmp_path):
    new = _parse(["--data", "d", "--out", str(tmp_path / "m.safetensors"), "--log-csv", "l.csv"])
    old = _parse(["--content-dir", "d", "--out", str(tmp_path / "m.safetensors"), "--log", "l.csv"])
    assert vars(new) == vars(old)
    opts = loop_options(new)
    assert opts.steps == 7 and opts.log_csv == "l.csv" and opts.keep_freed_memory
    assert opts.samples_dir == str(tmp_path / "m-samples") and opts.lr_schedule == "constant"
    assert loop_options(_parse(["--data", "d", "--out", "x.safetensors"])).log_csv == "x.log.csv"
    with pytest.raises(PainterlyError, match="safetensors"):
        loop_options(_parse(["--data", "d", "--out", "x.pt"]))


# -- distillation ------------------------------------------------------------------------------


def _teacher(tmp_path) -> str:
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(channels=(8, 8, 8), num_residual=1, num_styles=3, stem_kernel=3))
    path = tmp_path / "teacher.safetensors"
    training = {"config": {"content_layers": {"relu3_3": 1.0}, "style_weight": 25.0}}
    save_model(StylizationModel(net, [StyleInfo(n) for n in "abc"], training), path)
    return str(path)


def _photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


TINY = DistillConfig(student={"channels": [4, 4, 8], "num_residual": 1, "stem_kernel": 3},
                     content_layers={"relu1_2": 1.0}, style_layers={"relu1_1": 1.0})


def _distill_opts(steps: int, **kw) -> TrainOptions:
    base = dict(steps=steps, batch_size=2, size=16, lr=1e-3, device="cpu", fp32=True, progress=False,
                checkpoint_every=1, log_every=1)
    return TrainOptions(**{**base, **kw})


def test_distill_student_keeps_the_teachers_styles_and_resumes_exactly(tmp_path):
    teacher, photos = _teacher(tmp_path), _photos(tmp_path)
    a = distill(teacher, photos, tmp_path / "a.safetensors", TINY, _distill_opts(3), encoder_weights=None)
    assert a.result.step == 3 and set(a.result.losses) == {"pixel", "content", "style", "total"}
    distill(teacher, photos, tmp_path / "b.safetensors", TINY, _distill_opts(2), encoder_weights=None)
    b = distill(teacher, photos, tmp_path / "b.safetensors", TINY, _distill_opts(3, resume=True),
                encoder_weights=None)
    assert b.result.step == 3
    sa, sb = load_model(a.output), load_model(b.output)
    for (k, va), vb in zip(sa.net.state_dict().items(), sb.net.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    assert sa.names == ["a", "b", "c"] and sa.net.config.widths == (4, 4, 8) and sa.net.config.num_styles == 3
    # scored like the teacher: its loss config, plus the distillation settings
    assert sa.training["config"]["style_weight"] == 25.0 and sa.training["distill"]["teacher"] == teacher
    with pytest.raises(PainterlyError, match="different settings"):
        distill(teacher, photos, tmp_path / "b.safetensors", DistillConfig(student=TINY.student, mix_prob=0.5,
                content_layers=TINY.content_layers, style_layers=TINY.style_layers),
                _distill_opts(4, resume=True), encoder_weights=None)


def test_distill_continues_a_student_and_reads_checkpoints(tmp_path):
    from painterly.training.objectives.distill import student_from_checkpoint

    teacher, photos = _teacher(tmp_path), _photos(tmp_path)
    first = distill(teacher, photos, tmp_path / "a.safetensors", TINY, _distill_opts(2), encoder_weights=None)
    mid = student_from_checkpoint(tmp_path / "a.ckpt.safetensors")  # what a running job has so far
    done = load_model(first.output)
    assert mid.names == done.names and mid.training["steps"] == 2
    for va, vb in zip(mid.net.state_dict().values(), done.net.state_dict().values(), strict=True):
        assert torch.equal(va, vb)
    # --init: the student's shape (not the config's), other loss settings allowed; lr 0 keeps it as it was
    other = DistillConfig(student={"preset": "slim"}, mix_prob=0.0, content_weight=0.0, style_weight=0.0)
    cont = distill(teacher, photos, tmp_path / "b.safetensors", other, _distill_opts(1, lr=0.0),
                   encoder_weights=None, init=first.output)
    again = load_model(cont.output)
    assert again.net.config.widths == (4, 4, 8) and again.training["distill"]["init"] == first.output
    for va, vb in zip(again.net.state_dict().values(), done.net.state_dict().values(), strict=True):
        assert torch.equal(va, vb)
    with pytest.raises(PainterlyError, match="not a distillation checkpoint"):
        save = tmp_path / "x.ckpt"
        from painterly.training.checkpoint import save_checkpoint

        save_checkpoint(save, nn.Linear(1, 1), None, 0, {"config": {}})
        student_from_checkpoint(save)


def test_distill_grows_a_student_keeping_its_outputs(tmp_path):
    teacher, photos = _teacher(tmp_path), _photos(tmp_path)
    first = load_model(distill(teacher, photos, tmp_path / "a.safetensors", TINY, _distill_opts(2),
                               encoder_weights=None).output)
    wider = DistillConfig(student={"channels": [4, 6, 12], "num_residual": 2, "stem_kernel": 3},
                          content_layers=TINY.content_layers, style_layers=TINY.style_layers)
    # lr 0: the grown student is written as it starts, which must compute what the small one did
    run = distill(teacher, photos, tmp_path / "b.safetensors", wider, _distill_opts(1, lr=0.0),
                  encoder_weights=None, init=str(tmp_path / "a.safetensors"), grow=True)
    grown = load_model(run.output)
    assert grown.net.config.widths == (4, 6, 12) and len(grown.net.res) == 2
    assert grown.training["distill"]["grow"] is True
    x, style = torch.rand(2, 3, 24, 24), torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])
    torch.testing.assert_close(grown.net.eval()(x, style), first.net.eval()(x, style), atol=1e-5, rtol=0)
    narrower = DistillConfig(student={"channels": [4, 4, 4], "num_residual": 1, "stem_kernel": 3})
    for config, init, match in ((narrower, str(tmp_path / "a.safetensors"), "at least as wide"),
                                (wider, None, "--init STUDENT"), (wider, "pruned", "--init STUDENT")):
        with pytest.raises(PainterlyError, match=match):
            distill(teacher, photos, tmp_path / "c.safetensors", config, _distill_opts(1), encoder_weights=None,
                    init=init, grow=True)


def test_distill_pixel_only_learns_the_teacher(tmp_path):
    teacher, photos = _teacher(tmp_path), _photos(tmp_path)
    cfg = DistillConfig(student=TINY.student, content_weight=0.0, style_weight=0.0)
    run = distill(teacher, photos, tmp_path / "s.safetensors", cfg,
                  _distill_opts(30, lr=1e-2, checkpoint_every=0, log_csv=str(tmp_path / "log.csv")),
                  encoder_weights=None)
    rows = (tmp_path / "log.csv").read_text().splitlines()[1:]
    first, last = float(rows[0].split(",")[-1]), float(rows[-1].split(",")[-1])
    assert set(run.result.losses) == {"pixel", "total"} and last < 0.7 * first


def test_student_config_and_style_vectors():
    teacher = TransformerConfig(num_styles=5, output="clamp", upsample="bilinear")
    s = student_config(teacher, {"preset": "slim"})
    assert (s.widths, s.num_residual, s.num_styles, s.output, s.upsample) == ((16, 16, 16), 3, 5, "clamp", "bilinear")
    with pytest.raises(PainterlyError, match="student"):
        student_config(teacher, {"channels": [8, 8]})
    v = random_style_vectors(400, 5, 0.5, torch.Generator().manual_seed(0))
    assert torch.allclose(v.sum(1), torch.ones(400))
    mixed = (v > 0).sum(1) == 2
    assert 0.35 < mixed.float().mean() < 0.65 and ((v > 0).sum(1) >= 1).all()
    assert torch.equal(random_style_vectors(4, 1, 0.5, torch.Generator()), torch.ones(4, 1))


def test_style_boost_draws_a_style_more_often():
    names = ["a", "b", "c", "d"]
    probs = DistillConfig(style_boost={"c": 3.0}).style_probs(names)
    assert probs.tolist() == pytest.approx([1 / 6, 1 / 6, 1 / 2, 1 / 6])
    assert DistillConfig().style_probs(names) is None
    v = random_style_vectors(4000, 4, 0.0, torch.Generator().manual_seed(0), probs)
    share = v.mean(0)
    assert 0.46 < float(share[2]) < 0.54 and all(0.14 < float(share[i]) < 0.19 for i in (0, 1, 3))
    with pytest.raises(PainterlyError, match="unknown style 'x'"):
        DistillConfig(style_boost={"x": 2.0}).style_probs(names)
    for bad in ({"a": -1.0}, {n: 0.0 for n in names}, {"a": float("nan")}):
        with pytest.raises(PainterlyError, match="style-boost"):
            DistillConfig(style_boost=bad).style_probs(names)
    assert DistillConfig(style_boost={"c": 3.0}).to_dict()["style_boost"] == {"c": 3.0}
    assert "style_boost" not in DistillConfig().to_dict()


def test_distill_adain_decoder_student(tmp_path):
    from painterly.models.adain import AdaINDecoder, AdaINDecoderConfig, load_decoder, save_decoder
    from painterly.training.objectives.distill_adain import distill_adain

    photos = _photos(tmp_path)
    styles = tmp_path / "styles"
    styles.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a", "b", "udnie"):
        Image.fromarray(rng.integers(0, 255, (44, 36, 3), dtype=np.uint8)).save(styles / f"{name}.png")
    torch.manual_seed(0)
    teacher = tmp_path / "decoder.safetensors"
    save_decoder(AdaINDecoder(AdaINDecoderConfig(width=0.25)), teacher,
                 training={"config": {"hold_out": ["udnie"], "photo_prob": 0.0, "style_weight": 3.0}})
    cfg = DistillConfig(student={"width": 0.125}, content_layers={"relu1_2": 1.0}, style_layers={"relu1_1": 1.0})
    opts = _distill_opts(2, size=32)
    summary = distill_adain(teacher, photos, styles, tmp_path / "s.safetensors", cfg, opts, encoder_weights=None)
    student = load_decoder(summary.model_path)
    assert student.config.width == 0.125 and summary.held_out == ["udnie"] and summary.trained_styles == ["a", "b"]
    info = student.training_info
    assert info["config"]["teacher"] == str(teacher) and info["config"]["style_weight"] == 3.0
    assert set(info["evaluation"]) == {"trained_styles", "held_out_styles"}
    assert set(summary.result.losses) == {"pixel", "content", "style", "total"}
    resumed = distill_adain(teacher, photos, styles, tmp_path / "s.safetensors", cfg, _distill_opts(3, size=32,
                            resume=True), encoder_weights=None)
    assert resumed.result.step == 3
    # --init pruned: the student starts as the teacher narrowed to its width (lr 0: it stays that)
    pruned = distill_adain(teacher, photos, styles, tmp_path / "p.safetensors", cfg,
                           _distill_opts(1, size=32, lr=0.0), encoder_weights=None, pruned=True)
    from painterly.models.prune import prune_decoder

    expect = prune_decoder(load_decoder(teacher), 0.125).state_dict()
    got = load_decoder(pruned.model_path).state_dict()
    assert all(torch.allclose(got[k], expect[k]) for k in expect)
    assert load_decoder(pruned.model_path).training_info["config"]["init"] == "pruned"
    # a student continues from its file with new loss settings: the AdaIN loss against the paintings added
    task_cfg = DistillConfig(student={"width": 0.5}, content_layers={"relu1_2": 1.0}, style_layers={"relu1_1": 1.0},
                             task_weight=0.5)
    cont = distill_adain(teacher, photos, styles, tmp_path / "c.safetensors", task_cfg,
                         _distill_opts(1, size=32, lr=0.0), encoder_weights=None, student=pruned.model_path)
    assert set(cont.result.losses) == {"pixel", "content", "style", "task", "total"}
    assert cont.result.losses["task"] > 0
    kept = load_decoder(cont.model_path)  # lr 0: the student's weights, its width (not the config's 0.5)
    assert kept.config.width == 0.125 and all(torch.allclose(kept.state_dict()[k], got[k]) for k in got)
    assert kept.training_info["config"]["init"] == str(pruned.model_path)
    with pytest.raises(PainterlyError, match="not both"):
        distill_adain(teacher, photos, styles, tmp_path / "x.safetensors", task_cfg, _distill_opts(1, size=32),
                      encoder_weights=None, pruned=True, student=pruned.model_path)


def test_distill_cli(tmp_path, capsys):
    from painterly.cli import main

    teacher, photos = _teacher(tmp_path), _photos(tmp_path)
    out = tmp_path / "s.safetensors"
    argv = ["distill", "--teacher", teacher, "--content-dir", str(photos), "--out", str(out), "--steps", "1",
            "--size", "16", "--batch-size", "2", "--channels", "4", "4", "8", "--blocks", "1", "--stem-kernel", "3",
            "--fp32", "--device", "cpu", "--quiet", "--content-weight", "0", "--style-weight", "0"]
    assert main(argv) == 0
    assert load_model(out).net.config.widths == (4, 4, 8) and (tmp_path / "s.log.csv").is_file()
    assert "wrote" in capsys.readouterr().out
    assert main([*argv, "--blocks", "-1"]) == 2
    assert main(["distill", "--adain", "--data", str(photos), "--out", str(out)]) == 2  # no --style-dir
    for bad in (["--init", str(out)], ["--grow"], ["--task-style-scale", "2"]):  # not an AdaIN decoder; no grow
        assert main(["distill", "--adain", "--style-dir", str(photos), "--data", str(photos), "--out", str(out),
                     *bad]) == 2
    styles = load_model(out).names
    capsys.readouterr()
    assert main([*argv, "--style-boost", f"{styles[0]}=3"]) == 0
    assert load_model(out).training["distill"]["style_boost"] == {styles[0]: 3.0}
    for bad in ("nope=2", f"{styles[0]}", f"{styles[0]}=x"):
        assert main([*argv, "--style-boost", bad]) == 2
        err = capsys.readouterr().err
        assert "style-boost" in err and "Traceback" not in err
    assert main([*argv, "--init", str(out), "--grow", "--channels", "4", "8", "8", "--blocks", "2"]) == 0
    assert load_model(out).net.config.widths == (4, 8, 8)
    assert main([*argv, "--init", str(out), "--grow", "--channels", "4", "8", "8", "--stem-kernel", "5"]) == 2
    assert "--grow keeps the student's kernels" in capsys.readouterr().err


def test_distill_task_loss_uses_the_teachers_own_loss(tmp_path):
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(channels=(8, 8, 8), num_residual=1, num_styles=2, stem_kernel=3))
    config = {"content_layers": {"relu2_2": 1.0}, "style_layers": {"relu1_1": 1.0, "relu2_1": 1.0},
              "content_weight": 1.0, "style_weight": 5.0, "tv_weight": 0.0, "style_size": 48}
    teacher = tmp_path / "teacher.safetensors"
    save_model(StylizationModel(net, [StyleInfo("udnie"), StyleInfo("starry-night")], {"config": config}), teacher)
    cfg = DistillConfig(student=TINY.student, content_layers=TINY.content_layers, style_layers=TINY.style_layers,
                        mix_prob=0.0, task_weight=2.0)
    photos = _photos(tmp_path)
    run = distill(teacher, photos, tmp_path / "s.safetensors", cfg, _distill_opts(2, checkpoint_every=0),
                  encoder_weights=None)
    losses = run.result.losses
    assert losses["task"] > 0
    assert losses["total"] == pytest.approx(losses["pixel"] + losses["content"] + losses["style"] + losses["task"],
                                            rel=1e-4)
    assert load_model(run.output).training["distill"]["task_weight"] == 2.0
    # the task term's style part weighted 3x: same first step, a larger task loss, recorded in the file
    one = distill(teacher, photos, tmp_path / "a.safetensors", cfg, _distill_opts(1, checkpoint_every=0),
                  encoder_weights=None)
    heavy = distill(teacher, photos, tmp_path / "b.safetensors", replace(cfg, task_style_scale=3.0),
                    _distill_opts(1, checkpoint_every=0), encoder_weights=None)
    assert heavy.result.losses["task"] > 1.5 * one.result.losses["task"]
    assert load_model(heavy.output).training["distill"]["task_style_scale"] == 3.0
    # steps whose batch holds only mixes of two styles have no task term: logged as 0, not missing
    mixed = distill(teacher, photos, tmp_path / "m.safetensors", replace(cfg, mix_prob=1.0),
                    _distill_opts(2, checkpoint_every=0), encoder_weights=None)
    assert mixed.result.losses["task"] == 0.0
    with pytest.raises(PainterlyError, match="task-weight"):  # the teacher's paintings must be bundled ones
        distill(_teacher(tmp_path), photos, tmp_path / "t.safetensors", cfg, _distill_opts(1), encoder_weights=None)
