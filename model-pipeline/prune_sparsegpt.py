"""2:4 pruning with SparseGPT, then recovery fine-tuning with fixed masks and SquareHead-style
layer-wise distillation from the dense model. Runs on the GPU machine in one device call.

SparseGPT (Frantar & Alistarh, 2023), as in the paper: blocks are processed in order, each fed
the outputs of the already-pruned blocks before it. For every linear layer the Hessian of the
layer-wise reconstruction loss H = 2 X X^T / n is accumulated from calibration activations,
dampened (lambda = 1% of its mean diagonal), and its inverse taken through a Cholesky factor.
Columns are visited left to right in blocks of 128; at every 4th column the 2 weights of each
row with the lowest saliency w^2 / [H^-1]_jj^2 among the next 4 columns are marked for pruning,
and each column's pruning error is spread over the not-yet-visited columns (OBS update) -
within the block immediately, to later blocks in one lazy batched update.

Recovery: the pruned model is trained with its masks fixed (weights re-masked after every step)
on  CE(labels) + KL(teacher || student logits) + mean_l ||h_s,l - h_t,l||^2 / ||h_t,l||^2
(the SquareHead normalized feature loss on every block's output).

  python3 model-pipeline/prune_sparsegpt.py --dense-dir DIR --data DIR --out $OUT --minutes 4
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ckpt_io  # noqa: E402
from fim_data import build_windows, load_split, segments  # noqa: E402
from model import Config, Transformer, rope_tables  # noqa: E402
from train import evaluate, make_optimizer, save_model  # noqa: E402


def load_model(ckpt_dir, stem, device, embedding_from=None):
    meta, W = ckpt_io.load(ckpt_dir, stem)
    if "tok.weight" not in W:  # saved with a frozen embedding: take it from the base checkpoint
        W["tok.weight"] = ckpt_io.load(embedding_from, "dense")[1]["tok.weight"]
    cfg = Config(**meta["config"])
    model = Transformer(cfg)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in W.items()})
    return model.to(device), cfg, meta


@torch.no_grad()
def sparsegpt_24(W: torch.Tensor, H: torch.Tensor, blocksize=128, percdamp=0.01, n=2, m=4):
    """Prunes W (out x in) in place to n:m along the input dimension; returns the mask (True = kept)."""
    W = W.float()
    cols = W.shape[1]
    H = H.clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += percdamp * torch.mean(torch.diag(H)) * torch.eye(cols, device=H.device)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    keep = torch.ones_like(W, dtype=torch.bool)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            if i % m == 0:
                sal = W1[:, i:i + m] ** 2 / (torch.diag(Hinv1)[i:i + m].reshape(1, -1) ** 2)
                drop = torch.topk(sal, n, dim=1, largest=False).indices
                keep[:, i1 + i:i1 + i + m].scatter_(1, drop, False)
            w = W1[:, i]
            d = Hinv1[i, i]
            q = w * keep[:, i1 + i]
            Q1[:, i] = q
            err = (w - q) / d
            W1[:, i:] -= err.unsqueeze(1) @ Hinv1[i, i:].unsqueeze(0)
            Err1[:, i] = err
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    return W, keep


@torch.no_grad()
def prune_model(model: Transformer, calib: torch.Tensor, device, batch=8):
    """calib: (N, T) token ids. Returns {param name: keep mask}."""
    cfg = model.cfg
    T = calib.shape[1]
    cos, sin = rope_tables(cfg, T, device)
    xs = [model.tok(calib[i:i + batch].to(device)).float() for i in range(0, len(calib), batch)]
    masks, report = {}, []
    groups = {"attn_in": ["wq", "wk", "wv"], "attn_out": ["wo"], "ffn_in": ["w1", "w3"], "ffn_out": ["w2"]}
    for li, layer in enumerate(model.layers):
        hs, counts, hooks = {}, {}, []

        def hook(key):
            def f(mod, inp, out):
                x = inp[0].reshape(-1, inp[0].shape[-1]).float()
                if key not in hs:
                    hs[key] = torch.zeros(x.shape[1], x.shape[1], device=device)
                    counts[key] = 0
                hs[key] += 2 * x.T @ x
                counts[key] += x.shape[0]
            return f
        hooks.append(layer.wq.register_forward_hook(hook("attn_in")))
        hooks.append(layer.wo.register_forward_hook(hook("attn_out")))
        hooks.append(layer.w1.register_forward_hook(hook("ffn_in")))
        hooks.append(layer.w2.register_forward_hook(hook("ffn_out")))
        for x in xs:
            layer(x, cos, sin)
        for h in hooks:
            h.remove()
        for key, names in groups.items():
            H = hs[key] / counts[key]
            for name in names:
                lin = getattr(layer, name)
                before = lin.weight.detach().float().clone()
                Wn, keep = sparsegpt_24(lin.weight.data, H)
                lin.weight.data.copy_(Wn.to(lin.weight.dtype))
                masks[f"layers.{li}.{name}.weight"] = keep
                # layer-wise reconstruction error relative to the dense layer's output energy
                err = torch.trace((before - Wn) @ H @ (before - Wn).T) / torch.trace(before @ H @ before.T)
                report.append({"layer": li, "linear": name, "rel_recon_err": round(err.item(), 5),
                               "density": round(keep.float().mean().item(), 4)})
        xs = [layer(x, cos, sin) for x in xs]  # inputs of the next block come from the pruned block
    return masks, report


def recover(student, teacher, masks, toks, segs, args, emit, autocast, device, budget, data_seed=100, warmup=30):
    """Fixed-mask distillation: CE + KL(teacher || student) + SquareHead on every block's output,
    AdamW (no weight decay) peak args.lr, `warmup` steps, cosine to 0 over `budget` seconds of wall clock.
    The next pass's windows are built on a background thread. Returns (steps, tokens seen)."""
    import threading
    torch.backends.cuda.matmul.allow_tf32 = True
    if args.freeze_embedding:
        student.tok.weight.requires_grad_(False)
    opt = make_optimizer(student, args.lr, 0.0)
    mask_of = {p: masks[n] for n, p in student.named_parameters() if n in masks}
    fim_chunk = tuple(int(x) for x in args.fim_chunk.split(":")) if args.fim_chunk else None
    step, ep, pos, seen = 0, 0, 0, 0
    passes = {}

    def prepare(e):
        passes[e] = build_windows(toks, segs, args.seq, np.random.default_rng(data_seed + e), args.fim_rate,
                                  fim_chunk=fim_chunk, short_middle=args.short_middle)
    prepare(0)
    nxt = threading.Thread(target=prepare, args=(1,))
    nxt.start()
    data = passes[0]
    t0 = time.time()
    ema = None
    while True:
        progress = (time.time() - t0) / budget
        if progress >= 1.0 or (args.smoke and step >= 10):
            break
        if pos + args.batch > len(data):
            ep, pos = ep + 1, 0
            nxt.join()
            passes.pop(ep - 1, None)
            data = passes[ep]
            nxt = threading.Thread(target=prepare, args=(ep + 1,))
            nxt.start()
            emit({"event": "epoch", "epoch": ep, "step": step, "elapsed_s": round(time.time() - t0, 1)})
        x = torch.from_numpy(data[pos:pos + args.batch].astype(np.int64)).to(device)
        pos += args.batch
        lr = args.lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        for g in opt.param_groups:
            g["lr"] = lr
        inp, tgt = x[:, :-1], x[:, 1:]
        with torch.no_grad(), autocast():
            th, t_hidden = teacher.hidden(inp, collect=True)
            t_logits = F.linear(th, teacher.tok.weight).float()
        with autocast():
            sh, s_hidden = student.hidden(inp, collect=True)
            s_logits = F.linear(sh, student.tok.weight).float()
        V = s_logits.shape[-1]
        s_logp = F.log_softmax(s_logits, -1).reshape(-1, V)
        ce = F.nll_loss(s_logp, tgt.reshape(-1))
        kl = F.kl_div(s_logp, F.log_softmax(t_logits, -1).reshape(-1, V), log_target=True, reduction="batchmean")
        sq = torch.stack([((s.float() - t.float()) ** 2).mean() / (t.float() ** 2).mean() for s, t in zip(s_hidden, t_hidden)]).mean()
        loss = ce + kl + sq
        loss.backward()
        for p, mk in mask_of.items():
            p.grad.mul_(mk)
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            for p, mk in mask_of.items():
                p.mul_(mk)  # AdamW's update can move masked weights off zero; pin them back
        step += 1
        seen += tgt.numel()
        if step % 25 == 0 or step <= 2:
            ema = loss.item() if ema is None else 0.9 * ema + 0.1 * loss.item()
            emit({"step": step, "loss": round(loss.item(), 4), "ce": round(ce.item(), 4), "kl": round(kl.item(), 4),
                  "squarehead": round(sq.item(), 4), "lr": round(lr, 7), "tokens": seen, "elapsed_s": round(time.time() - t0, 1)})
    nxt.join()
    return step, seen



def check_24(model, masks):
    for n, p in model.named_parameters():
        if n in masks:
            nz = (p.detach().reshape(p.shape[0], -1, 4) != 0).sum(-1)
            assert int(nz.max()) <= 2, f"{n} is not 2:4"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dense-dir", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=4.0, help="recovery fine-tuning time")
    ap.add_argument("--calib", type=int, default=128, help="calibration sequences of --seq tokens")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--fim-rate", type=float, default=0.5)
    ap.add_argument("--fim-chunk", default=None, help="LO:HI - denser FIM examples (see fim_data.build_windows)")
    ap.add_argument("--short-middle", type=float, default=0.0)
    ap.add_argument("--embedding-from", default=None, help="base dense checkpoint dir when --dense-dir lacks the embedding")
    ap.add_argument("--freeze-embedding", action="store_true", help="keep the embedding fixed and do not save it")
    ap.add_argument("--log", default=None, help="append the log here instead of OUT/prune-log.jsonl")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False  # Hessian math in full fp32
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device == "cuda" else (lambda: torch.autocast("cpu", enabled=False))
    os.makedirs(args.out, exist_ok=True)
    log = open(args.log or os.path.join(args.out, "prune-log.jsonl"), "a" if args.log else "w")
    fim_chunk = tuple(int(x) for x in args.fim_chunk.split(":")) if args.fim_chunk else None

    def emit(rec):
        print(json.dumps(rec), flush=True)
        log.write(json.dumps(rec) + "\n")
        log.flush()

    teacher, cfg, dmeta = load_model(args.dense_dir, "dense", device, args.embedding_from)
    if args.smoke:
        args.seq, args.calib, args.batch = cfg.ctx, 8, 4
    toks, lens = load_split(args.data, "train")
    vtoks, vlens = load_split(args.data, "val")
    segs = segments(lens, args.seq - 6)
    rng = np.random.default_rng(7)
    calib = torch.from_numpy(build_windows(toks, segs, args.seq, rng, args.fim_rate, args.calib, fim_chunk=fim_chunk,
                                           short_middle=args.short_middle)[:, :-1].astype(np.int64))
    vr = np.random.default_rng(1234)
    vsegs = segments(vlens, args.seq - 6)
    nval = 8 if args.smoke else 64
    val_l2r = build_windows(vtoks, vsegs, args.seq, vr, 0.0, nval)
    val_fim = build_windows(vtoks, vsegs, args.seq, vr, 1.0, nval)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    ev = lambda m: (evaluate(m, val_l2r, 16, device, autocast), evaluate(m, val_fim, 16, device, autocast),
                    evaluate(m, val_fim, 16, device, autocast, True))
    dense_val = ev(teacher)
    emit({"event": "dense", "val_l2r": round(dense_val[0], 4), "val_fim": round(dense_val[1], 4),
          "val_fim_middle": round(dense_val[2], 4), "train_tokens": int(toks.size)})

    student, _, _ = load_model(args.dense_dir, "dense", device, args.embedding_from)
    t0 = time.time()
    masks, report = prune_model(student, calib, device)
    check_24(student, masks)
    for r in report:
        emit(r)
    oneshot = ev(student)
    emit({"event": "sparsegpt", "seconds": round(time.time() - t0, 1), "val_l2r": round(oneshot[0], 4), "val_fim": round(oneshot[1], 4),
          "val_fim_middle": round(oneshot[2], 4)})
    save_model(student, cfg, args.out, "sparse-oneshot", {"kind": "sparsegpt-2:4 one-shot"}) if args.smoke else None

    # ---- recovery with fixed masks ----
    budget = 20.0 if args.smoke else args.minutes * 60.0
    step, seen = recover(student, teacher, masks, toks, segs, args, emit, autocast, device, budget, data_seed=100)
    check_24(student, masks)
    rec = ev(student)
    summary = {"event": "done", "dense_val": dense_val, "oneshot_val": oneshot, "recovered_val": rec,
               "recovery_steps": step, "recovery_tokens": seen, "recovery_epochs": round(seen / max(toks.size, 1), 2),
               "ppl": {"dense": round(math.exp(dense_val[0]), 3), "oneshot": round(math.exp(oneshot[0]), 3), "recovered": round(math.exp(rec[0]), 3)},
               "args": vars(args)}
    emit(summary)
    save_model(student, cfg, args.out, "sparse", {"kind": "sparsegpt-2:4 + squarehead recovery", "summary": summary,
                                                  "embedding_from": args.embedding_from if args.freeze_embedding else None},
               skip=("tok.weight",) if args.freeze_embedding else ())
    if not args.log:
        json.dump(summary, open(os.path.join(args.out, "prune-summary.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
