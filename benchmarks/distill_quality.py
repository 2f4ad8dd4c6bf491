"""A distilled student against its teacher: content and style (Gram) loss at 512 px on the sample photos,
both scored with the teacher's own training loss (as ``quality.py feedforward`` scores the shipped model),
and the torch forward time of both at 1024 x 1024.

    python benchmarks/distill_quality.py runs/distill/multistyle_slim.safetensors
    python benchmarks/distill_quality.py runs/distill/multistyle_slim.ckpt.safetensors   # a run still going

The student is within target when its mean content and style losses are within 10% of the teacher's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import markdown_table  # noqa: E402
from benchmarks.quality import PHOTOS, SIZE, model_loss  # noqa: E402


def load_student(path: str):
    from painterly.models.io import load_model
    from painterly.training.objectives.distill import student_from_checkpoint

    return student_from_checkpoint(path) if path.endswith(".ckpt.safetensors") else load_model(path)


def forward_seconds(model, size: int = 1024, repeats: int = 3) -> float:
    import torch

    x = torch.rand(1, 3, size, size)
    style = model.net.style_vector(0)
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            t = time.perf_counter()
            model.net(x, style)
            best = min(best, time.perf_counter() - t)
    return best


def compare(student_path: str, teacher_path: str | None, photos: list[str], styles: list[str] | None) -> dict:
    import painterly
    from painterly.methods.stylize import get_model
    from painterly.metrics import score_stylization
    from painterly.paintings import bundled_painting

    teacher = get_model(teacher_path)
    student = load_student(student_path)
    loss, style_scale = model_loss(teacher)
    rows = []
    for photo in photos:
        for name in styles or teacher.names:
            entry = {"photo": photo, "style": name}
            for label, model in (("teacher", teacher), ("student", student)):
                out = painterly.stylize(PHOTOS / f"{photo}.jpg", name, size=SIZE, model=model)
                entry[label] = score_stylization(out, PHOTOS / f"{photo}.jpg", bundled_painting(name), size=SIZE,
                                                 loss=loss, style_scale=style_scale)
            rows.append(entry)
            print(json.dumps(entry), flush=True)
    mean = {label: {k: sum(r[label][k] for r in rows) / len(rows) for k in ("content", "style", "total")}
            for label in ("teacher", "student")}
    ratio = {k: mean["student"][k] / mean["teacher"][k] for k in mean["teacher"]}
    seconds = {"teacher": forward_seconds(teacher), "student": forward_seconds(student)}
    return {"student": student_path, "student_config": student.net.config.to_dict(), "steps":
            student.training.get("steps"), "rows": rows, "mean": mean, "ratio": ratio, "torch_1024_s": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("student", help="student model file, or a distillation checkpoint (*.ckpt.safetensors)")
    ap.add_argument("--teacher", default=None, help="teacher model file (default: the shipped one)")
    ap.add_argument("--photos", nargs="+", default=["lake", "otters", "colosseum"])
    ap.add_argument("--styles", nargs="+", default=None, help="style names (default: all)")
    ap.add_argument("--json", default=None, help="write the numbers here")
    args = ap.parse_args()
    data = compare(args.student, args.teacher, args.photos, args.styles)
    m, r = data["mean"], data["ratio"]
    print(markdown_table(["model", "content", "style", "total", "torch 1024 px s"], [
        ["teacher", m["teacher"]["content"], m["teacher"]["style"], m["teacher"]["total"],
         data["torch_1024_s"]["teacher"]],
        ["student", m["student"]["content"], m["student"]["style"], m["student"]["total"],
         data["torch_1024_s"]["student"]],
        ["student / teacher", r["content"], r["style"], r["total"],
         data["torch_1024_s"]["student"] / data["torch_1024_s"]["teacher"]],
    ]))
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
