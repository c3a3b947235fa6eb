"""Continued fixed-mask recovery of an already pruned 2:4 model (GPU machine, one device call).

Starts from the shipped sparse checkpoint and distils it further from the dense model with the
same loss as prune_sparsegpt.py (CE + KL(teacher || student) + SquareHead), masks fixed: a new
warm-up and cosine schedule over the time that fits the call. Reads the compact carry written by
recover_carry.py (ckpt_io packs: the shared frozen embedding once, exact; the student as 2:4 masks +
bf16 values, exact; the teacher's matrices as Q8_0-style int8 with fp16 scales per 32 columns,
the one lossy part, to leave room for training data). Writes OUT/sparse.* (without the frozen
embedding; merge_embedding.py restores it here) and appends the log to --log.

  python3 model-pipeline/recover.py --carry model-pipeline/work/carry-recover --out $OUT/sp \
      --minutes 3 --stop-by 205 --fim-rate 0.6 --fim-chunk 32:512 --short-middle 0.5 --log $OUT/log.jsonl
"""
import argparse
import json
import math
import os
import sys
import time

T_START = time.time()

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ckpt_io  # noqa: E402
from fake_quant import quantize_in_forward  # noqa: E402
from fim_data import build_windows, load_split, segments  # noqa: E402
from model import Config, Transformer  # noqa: E402
from prune_sparsegpt import check_24, recover  # noqa: E402
from train import evaluate, save_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--carry", required=True, help="folder with model/{emb,student,teacher}.* packs and data/")
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=3.0, help="recovery time (upper bound)")
    ap.add_argument("--stop-by", type=float, default=None,
                    help="seconds after process start by which training must end (leaves --reserve for eval + save)")
    ap.add_argument("--reserve", type=float, default=25.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--fim-rate", type=float, default=0.5)
    ap.add_argument("--fim-chunk", default=None)
    ap.add_argument("--short-middle", type=float, default=0.0)
    ap.add_argument("--data-seed", type=int, default=200, help="window seeds data_seed+pass (the first recovery used 100+)")
    ap.add_argument("--val-windows", type=int, default=64)
    ap.add_argument("--log", default=None)
    ap.add_argument("--smoke", action="store_true", help="CPU dry run: short windows, a few steps")
    ap.add_argument("--qat", action="store_true",
                    help="quantization-aware: the student's 2:4 matrices pass through Q4_S24 round to nearest in the "
                         "forward pass (fake_quant.py); ship the converter's file of the result, not GPTQ's")
    args = ap.parse_args()
    args.freeze_embedding = True  # the embedding is shared with the teacher and is not returned
    device = "cuda" if torch.cuda.is_available() else "cpu"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device == "cuda" else (lambda: torch.autocast("cpu", enabled=False))
    os.makedirs(args.out, exist_ok=True)
    log = open(args.log or os.path.join(args.out, "recover-log.jsonl"), "a")

    def emit(rec):
        print(json.dumps(rec), flush=True)
        log.write(json.dumps(rec) + "\n")
        log.flush()

    mdir = os.path.join(args.carry, "model")
    _, E, _ = ckpt_io.load_pack(mdir, "emb")
    smeta, S, keep = ckpt_io.load_pack(mdir, "student")
    _, Tw, _ = ckpt_io.load_pack(mdir, "teacher")
    cfg = Config(**smeta["config"])

    def build(W):
        m = Transformer(cfg)
        m.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in {**W, **E}.items()})
        return m.to(device)
    student, teacher = build(S), build(Tw)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    masks = {n: torch.from_numpy(k).to(device) for n, k in keep.items()}
    check_24(student, masks)
    assert all(bool((p.detach()[~masks[n]] == 0).all()) for n, p in student.named_parameters() if n in masks)
    if args.qat:
        # every validation figure below is then the 4-bit model's, as the converter will store it
        quantize_in_forward([m for n, m in student.named_modules() if n + ".weight" in masks])

    if args.smoke:
        args.seq, args.batch, args.val_windows = 128, 2, 2
    toks, lens = load_split(os.path.join(args.carry, "data"), "train")
    vtoks, vlens = load_split(os.path.join(args.carry, "data"), "val")
    segs = segments(lens, args.seq - 6)
    vr = np.random.default_rng(1234)  # the same validation windows as train.py / prune_sparsegpt.py
    vsegs = segments(vlens, args.seq - 6)
    val_l2r = build_windows(vtoks, vsegs, args.seq, vr, 0.0, args.val_windows)
    val_fim = build_windows(vtoks, vsegs, args.seq, vr, 1.0, args.val_windows)
    ev = lambda m: [round(evaluate(m, val_l2r, 16, device, autocast), 4), round(evaluate(m, val_fim, 16, device, autocast), 4),
                    round(evaluate(m, val_fim, 16, device, autocast, True), 4)]
    teacher_val, start_val = ev(teacher), ev(student)
    emit({"event": "start", "teacher_val": teacher_val, "student_val": start_val, "train_tokens": int(toks.size),
          "train_docs": int(lens.size), "setup_s": round(time.time() - T_START, 1),
          "gpu": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__})

    budget = args.minutes * 60.0
    if args.stop_by is not None:
        budget = min(budget, args.stop_by - (time.time() - T_START) - args.reserve)
    if args.smoke:
        budget = min(budget, 20.0)
    budget = max(budget, 5.0)  # never fail here: a short run still returns a checkpoint
    emit({"event": "budget", "seconds": round(budget, 1)})
    step, seen = recover(student, teacher, masks, toks, segs, args, emit, autocast, device, budget,
                         data_seed=args.data_seed, warmup=args.warmup)
    check_24(student, masks)
    rec = ev(student)
    summary = {"event": "done", "teacher_val": teacher_val, "start_val": start_val, "recovered_val": rec,
               "recovery_steps": step, "recovery_tokens": seen, "recovery_passes": round(seen / max(toks.size, 1), 2),
               "recovery_s": round(budget, 1), "total_s": round(time.time() - T_START, 1),
               "ppl": {"teacher": round(math.exp(teacher_val[0]), 3), "start": round(math.exp(start_val[0]), 3),
                       "recovered": round(math.exp(rec[0]), 3)},
               "args": vars(args)}
    emit(summary)
    kind = "sparsegpt-2:4 + squarehead recovery, continued" + (", quantization-aware (Q4_S24 round to nearest)" if args.qat else "")
    save_model(student, cfg, args.out, "sparse", {"kind": kind, "summary": summary,
                                                  "embedding_from": "carry-recover/model/emb"}, skip=("tok.weight",))
    emit({"event": "saved", "total_s": round(time.time() - T_START, 1)})


if __name__ == "__main__":
    main()
