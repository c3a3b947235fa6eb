"""Dense FIM pre-training of the bundled code model on one GPU, inside one 10-minute device call.

The learning-rate schedule runs on wall-clock progress (warmup, then cosine to 10% of peak over
--minutes), so the run always ends on time whatever the throughput turns out to be.
Writes to --out: dense checkpoint (ckpt_io format; summary in dense.json) and train-log.jsonl (loss curve).

  python3 model-pipeline/train.py --data model-pipeline/work/carry --out $OUT --minutes 7.5
  python3 model-pipeline/train.py --smoke --data ... --out /tmp/smoke      # tiny CPU check
"""
import argparse
import json
import math
import os
import sys
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ckpt_io  # noqa: E402
from fim_data import build_windows, load_split, segments  # noqa: E402
from model import Config, Transformer  # noqa: E402


def to_bf16_bits(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.bfloat16).view(torch.int16).cpu().numpy().view(np.uint16)


def save_model(model, cfg, out, stem, meta, skip=()):
    tensors = {n: to_bf16_bits(p) for n, p in model.state_dict().items() if n not in skip}
    return ckpt_io.save(tensors, out, stem, {"config": cfg.to_dict(), **meta})


def make_optimizer(model, lr, wd):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and p.requires_grad]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 and p.requires_grad]
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, fused=torch.cuda.is_available())
    except TypeError:
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8)


def middle_mask(windows):
    """True where the target token belongs to a FIM middle (after <fim_end>, up to and including EOS):
    the part of a FIM example that the extension actually asks the model for."""
    mask = np.zeros(windows.shape, dtype=bool)
    for r, row in enumerate(windows):
        inside = False
        for c, t in enumerate(row.tolist()):
            if inside:
                mask[r, c] = True
                if t == 32014:
                    inside = False
            elif t == 32017:
                inside = True
    return mask[:, 1:]


@torch.no_grad()
def evaluate(model, windows, batch, device, autocast, middle_only=False):
    model.eval()
    mask = middle_mask(windows) if middle_only else None
    tot, n = 0.0, 0
    for i in range(0, len(windows), batch):
        x = torch.from_numpy(windows[i:i + batch].astype(np.int64)).to(device)
        with autocast():
            logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="none")
        if mask is not None:
            mk = torch.from_numpy(mask[i:i + batch].reshape(-1)).to(device)
            tot += loss[mk].sum().item()
            n += int(mk.sum())
        else:
            tot += loss.sum().item()
            n += loss.numel()
    model.train()
    return tot / max(n, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=7.5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--fim-rate", type=float, default=0.5)
    ap.add_argument("--fim-chunk", default=None, help="LO:HI - cut FIM segments into LO..HI-token pieces (denser FIM)")
    ap.add_argument("--short-middle", type=float, default=0.0, help="fraction of FIM middles of at most 64 tokens")
    ap.add_argument("--init-dir", default=None, help="continue from a dense checkpoint (ckpt_io) instead of random init")
    ap.add_argument("--freeze-embedding", action="store_true",
                    help="keep the (tied) embedding fixed and leave it out of the saved checkpoint (smaller transfer)")
    ap.add_argument("--eval-every", type=float, default=60.0, help="seconds")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--log", default=None, help="append the log here instead of OUT/train-log.jsonl")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    cfg = Config(ctx=args.seq)
    if args.smoke:
        cfg = Config(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn=128, ctx=128)
        args.seq, args.batch, args.warmup = 128, 4, 5
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device == "cuda" else (lambda: torch.autocast("cpu", enabled=False))
    os.makedirs(args.out, exist_ok=True)
    log = open(args.log or os.path.join(args.out, "train-log.jsonl"), "a" if args.log else "w")

    def emit(rec):
        print(json.dumps(rec), flush=True)
        log.write(json.dumps(rec) + "\n")
        log.flush()

    t_load = time.time()
    toks, lens = load_split(args.data, "train")
    vtoks, vlens = load_split(args.data, "val")
    max_seg = args.seq - 6  # room for BOS, the three FIM markers and EOS
    segs = segments(lens, max_seg)
    rng = np.random.default_rng(args.seed)
    vr = np.random.default_rng(1234)
    vsegs = segments(vlens, max_seg)
    nval = 8 if args.smoke else 64
    val_l2r = build_windows(vtoks, vsegs, args.seq, vr, 0.0, nval)
    val_fim = build_windows(vtoks, vsegs, args.seq, vr, 1.0, nval)
    emit({"event": "data", "train_tokens": int(toks.size), "train_docs": int(lens.size), "segments": int(len(segs)),
          "val_tokens": int(vtoks.size), "val_windows": [len(val_l2r), len(val_fim)], "load_s": round(time.time() - t_load, 1)})

    fim_chunk = tuple(int(x) for x in args.fim_chunk.split(":")) if args.fim_chunk else None
    # Next epoch is assembled on a background thread while the GPU trains on the current one.
    epochs = {}

    def prepare(ep):
        epochs[ep] = build_windows(toks, segs, args.seq, np.random.default_rng(args.seed * 1000 + ep), args.fim_rate,
                                   fim_chunk=fim_chunk, short_middle=args.short_middle)

    prepare(0)
    nxt = threading.Thread(target=prepare, args=(1,))
    nxt.start()

    model = Transformer(cfg)
    if args.init_dir:
        meta, W = ckpt_io.load(args.init_dir, "dense")
        assert meta["config"] == cfg.to_dict(), "init checkpoint has another shape"
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in W.items()})
    model = model.to(device)
    if args.freeze_embedding:
        model.tok.weight.requires_grad_(False)
    nparams = sum(p.numel() for p in model.parameters())
    emit({"event": "model", "params": nparams, "config": cfg.to_dict()})
    opt = make_optimizer(model, args.lr, args.wd)
    fwd = model
    if device == "cuda" and not args.no_compile and hasattr(torch, "compile"):
        fwd = torch.compile(model)

    def loss_fn(m, x):
        with autocast():
            logits = m(x[:, :-1])
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))

    if args.init_dir:  # where the continued run starts from
        emit({"event": "val", "step": 0, "val_l2r": round(evaluate(model, val_l2r, 32, device, autocast), 4),
              "val_fim": round(evaluate(model, val_fim, 32, device, autocast), 4),
              "val_fim_middle": round(evaluate(model, val_fim, 32, device, autocast, True), 4)})
    budget = args.minutes * 60.0
    if args.smoke:
        budget = 20.0
    step, ep, pos, tokens_seen = 0, 0, 0, 0
    t0 = time.time()
    last_eval = t0
    ema = None
    curve = []
    while True:
        elapsed = time.time() - t0
        progress = elapsed / budget
        if progress >= 1.0 or (args.smoke and step >= 30):
            break
        data = epochs[ep]
        if pos + args.batch > len(data):
            ep, pos = ep + 1, 0
            nxt.join()
            epochs.pop(ep - 1, None)
            nxt = threading.Thread(target=prepare, args=(ep + 1,))
            nxt.start()
            emit({"event": "epoch", "epoch": ep, "step": step, "elapsed_s": round(elapsed, 1)})
            data = epochs[ep]
        x = torch.from_numpy(data[pos:pos + args.batch].astype(np.int64)).to(device, non_blocking=True)
        pos += args.batch
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))
        for g in opt.param_groups:
            g["lr"] = lr
        try:
            loss = loss_fn(fwd, x)
        except Exception as e:  # compile trouble must not cost the run: fall back to eager
            if fwd is model:
                raise
            emit({"event": "compile_failed", "error": str(e)[:400]})
            fwd = model
            loss = loss_fn(fwd, x)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        tokens_seen += x[:, 1:].numel()
        if step % 25 == 0 or step <= 3:
            lv = loss.item()
            ema = lv if ema is None else 0.9 * ema + 0.1 * lv
            el = time.time() - t0
            rec = {"step": step, "loss": round(lv, 4), "loss_ema": round(ema, 4), "lr": round(lr, 6), "gnorm": round(gnorm.item(), 3),
                   "tokens": tokens_seen, "elapsed_s": round(el, 1), "tok_per_s": round(tokens_seen / max(el, 1e-9))}
            curve.append(rec)
            emit(rec)
        if time.time() - last_eval > args.eval_every and not args.smoke:
            last_eval = time.time()
            emit({"event": "val", "step": step, "val_l2r": round(evaluate(model, val_l2r, 32, device, autocast), 4),
                  "val_fim": round(evaluate(model, val_fim, 32, device, autocast), 4),
                  "val_fim_middle": round(evaluate(model, val_fim, 32, device, autocast, True), 4)})
    train_s = time.time() - t0
    vl, vf = evaluate(model, val_l2r, 32, device, autocast), evaluate(model, val_fim, 32, device, autocast)
    vm = evaluate(model, val_fim, 32, device, autocast, True)
    summary = {"event": "done", "steps": step, "tokens": tokens_seen, "epochs": round(tokens_seen / max(toks.size, 1), 2),
               "train_s": round(train_s, 1), "final_loss_ema": ema, "val_l2r": round(vl, 4), "val_fim": round(vf, 4), "val_fim_middle": round(vm, 4),
               "val_ppl_l2r": round(math.exp(vl), 3), "params": nparams, "args": vars(args),
               "gpu": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__}
    emit(summary)
    save_model(model, cfg, args.out, "dense", {"summary": summary, "curve": curve,
                                               "embedding_from": args.init_dir if args.freeze_embedding else None},
               skip=("tok.weight",) if args.freeze_embedding else ())
    nxt.join()


if __name__ == "__main__":
    main()
