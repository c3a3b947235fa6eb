"""End-to-end tuning of the sparse 4-bit model's scales and norms against the dense model's outputs (numpy, CPU).

GPTQ (gptq_quant.py) fits each linear layer on its own; its remaining error adds up through the network. With
the 2:4 mask and the 4-bit codes left exactly as GPTQ wrote them, this script tunes what the Q4_S24 file can
still change freely: every fp16 group scale (one per 128 input columns of a row) and the RMSNorm weights. The
loss is the KL divergence from the dense model's next-token distribution (the twin the evaluation compares with,
`models/*-dense-q8_0.gguf`) to the sparse 4-bit model's, over calibration windows from the training split only
(FIM layout as in the FIM tuning); gradients by hand-written backpropagation through the Llama blocks (the same
math as gptq_quant.Model, checked against it and against finite differences in tests/test_tune_scales.py).

Each scale is tuned as d = d0 * exp(s) (Adam on s), so it keeps its sign and moves relative to its size; the
result is rounded to fp16 and written into a copy of the GPTQ file, which is then read back and checked: codes,
masks and every byte outside the scales and norm weights are unchanged.

Measured on the bundled sparse twin (2026-11-29, docs/model.md): 256 fresh 1,024-token windows, one step each (21 min
on this 2-core CPU), lowered the validation KL to the dense twin by 2.3% and the validation perplexity by 0.12%; with
the codes fixed, that is about what scales and norms can still give; with --train-codes (320 fresh windows) the same
(-2.5% KL, -0.12%): the codes need the GPU's scale of data (recover.py --qat). Hence not part of `run.sh quantize`: run it by hand.

  python3 model-pipeline/tune_scales.py --student models/...-sparse-q4_s24.gguf \
      --teacher models/...-dense-q8_0.gguf --out tuned.gguf --steps 256
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fim_data import build_windows, load_split, segments  # noqa: E402
from gptq_quant import (GGML_F32, GGML_Q4_S24, LAYER_NAMES, Model, pack_q4_s24, q4_s24_parts,  # noqa: E402
                        read_gguf, rope, tensor_bytes)

LINEARS = ("wq", "wk", "wv", "wo", "w1", "w3", "w2")
NORMS = ("attn_norm", "ffn_norm")
GROUP = 128


def log_softmax(z):
    m = z.max(-1, keepdims=True)
    return z - (m + np.log(np.exp(z - m).sum(-1, keepdims=True)))


class SparseStudent:
    """The quantized model with its scales and norm weights as parameters: W = codes * repeat(d0 * exp(s), 128)."""

    def __init__(self, base, codes, keep, d16, tensors=None, train_codes=False):
        """base: a gptq_quant.Model (embedding, norms, hyper-parameters; its linear weights are not used);
        codes / keep / d16: per layer, per linear name, the Q4_S24 parts (gptq_quant.q4_s24_parts).
        train_codes: also train latent float weights "i.wq.w" ... (started at the file's weights, so the start is
        exactly the file), whose codes are round(w / d) clamped to [-8, 7] on the mask (straight-through gradients)."""
        self.tensors, self.train_codes = tensors, train_codes
        self.emb, self.heads, self.kv_heads, self.hd = base.emb, base.heads, base.kv_heads, base.hd
        self.eps, self.rope_tables, self.n_layers = base.eps, base.rope_tables, base.n_layers
        self.codes, self.keep = codes, keep
        self.d0 = [{n: d[n].astype(np.float64) for n in LINEARS} for d in d16]
        # name -> float64 array: log-scales "i.wq" ..., norm weights "i.attn_norm" ..., "output_norm"
        self.params = {f"{i}.{n}": np.zeros(self.d0[i][n].shape) for i in range(self.n_layers) for n in LINEARS}
        self.params.update({f"{i}.{n}": base.layers[i][n].astype(np.float64) for i in range(self.n_layers) for n in NORMS})
        self.params["output_norm"] = base.norm.astype(np.float64)
        if train_codes:
            self.params.update({f"{i}.{n}.w": self.codes[i][n] * np.repeat(self.d0[i][n], GROUP, axis=1)
                                for i in range(self.n_layers) for n in LINEARS})

    @classmethod
    def from_gguf(cls, path, train_codes=False):
        tensors, _ = read_gguf(path)
        base = Model(path)
        codes, keep, d16 = [], [], []
        for i in range(base.n_layers):
            parts = {}
            for name in LINEARS:
                info = tensors[f"blk.{i}.{LAYER_NAMES[name]}.weight"]
                assert info["type"] == GGML_Q4_S24, f"blk.{i}.{LAYER_NAMES[name]} is not Q4_S24"
                parts[name] = q4_s24_parts(tensor_bytes(path, info), info["dims"][1], info["dims"][0])
            codes.append({n: p[0] for n, p in parts.items()})
            keep.append({n: p[1] for n, p in parts.items()})
            d16.append({n: p[2] for n, p in parts.items()})
        return cls(base, codes, keep, d16, tensors, train_codes)

    def scales(self, i, name):
        """The fp16 scales the file will hold (as float64)."""
        return (self.d0[i][name] * np.exp(self.params[f"{i}.{name}"])).astype(np.float16).astype(np.float64)

    def weight(self, i, name):
        """The weights the file will hold; with train_codes the codes are re-derived from the latent weights first."""
        d = np.repeat(self.scales(i, name), GROUP, axis=1)
        if self.train_codes:
            latent = self.params[f"{i}.{name}.w"]
            self.codes[i][name] = (np.clip(np.rint(latent / np.where(d == 0, 1.0, d)), -8, 7) * self.keep[i][name]).astype(np.int8)
        return (self.codes[i][name] * d).astype(np.float32)

    # ------------------------------------------------------------------ forward with the activations backward needs
    def forward(self, ids):
        T = len(ids)
        cos, sin = self.rope_tables(T)
        x = self.emb[ids]
        caches = []
        for i in range(self.n_layers):
            W = {n: self.weight(i, n) for n in LINEARS}
            an, fn = (self.params[f"{i}.{n}"].astype(np.float32) for n in NORMS)
            c = {"W": W, "x": x}
            c["r1"] = 1 / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps)
            h = x * c["r1"] * an
            c["h"] = h
            q = rope((h @ W["wq"].T).reshape(T, self.heads, self.hd), cos, sin).transpose(1, 0, 2)
            k = rope((h @ W["wk"].T).reshape(T, self.kv_heads, self.hd), cos, sin).transpose(1, 0, 2)
            v = (h @ W["wv"].T).reshape(T, self.kv_heads, self.hd).transpose(1, 0, 2)
            rep = self.heads // self.kv_heads
            kr, vr = np.repeat(k, rep, axis=0), np.repeat(v, rep, axis=0)
            att = (q @ kr.transpose(0, 2, 1)) * np.float32(1 / math.sqrt(self.hd))
            att += np.triu(np.full((T, T), -np.inf, np.float32), 1)
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            o = (att @ vr).transpose(1, 0, 2).reshape(T, -1)
            c.update(q=q, kr=kr, vr=vr, att=att, o=o)
            x2 = x + o @ W["wo"].T
            c["x2"] = x2
            c["r2"] = 1 / np.sqrt((x2 * x2).mean(-1, keepdims=True) + self.eps)
            h2 = x2 * c["r2"] * fn
            g, u = h2 @ W["w1"].T, h2 @ W["w3"].T
            sg = 1 / (1 + np.exp(-g))
            a = g * sg * u
            c.update(h2=h2, g=g, u=u, sg=sg, a=a)
            x = (x2 + a @ W["w2"].T).astype(np.float32)
            caches.append(c)
        on = self.params["output_norm"].astype(np.float32)
        rf = 1 / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps)
        logits = (x * rf * on) @ self.emb.T
        return logits, (caches, x, rf)

    # ------------------------------------------------------------------ backward: d loss / d params
    def backward(self, dlogits, state, ids):
        caches, xf, rf = state
        T = len(ids)
        cos, sin = self.rope_tables(T)
        grads = {}
        dy = dlogits @ self.emb
        dx, grads["output_norm"] = _rms_backward(dy, xf, rf, self.params["output_norm"].astype(np.float32))
        for i in reversed(range(self.n_layers)):
            c, W = caches[i], caches[i]["W"]
            dW = {}
            # ffn: x_out = x2 + a W2^T, a = silu(g) * u, g = h2 W1^T, u = h2 W3^T, h2 = rms(x2) * ffn_norm
            dx2 = dx
            dW["w2"] = dx.T @ c["a"]
            da = dx @ W["w2"]
            du = da * c["g"] * c["sg"]
            dg = da * c["u"] * c["sg"] * (1 + c["g"] * (1 - c["sg"]))
            dW["w1"], dW["w3"] = dg.T @ c["h2"], du.T @ c["h2"]
            dh2 = dg @ W["w1"] + du @ W["w3"]
            d, grads[f"{i}.ffn_norm"] = _rms_backward(dh2, c["x2"], c["r2"], self.params[f"{i}.ffn_norm"].astype(np.float32))
            dx2 = dx2 + d
            # attention: x2 = x + o Wo^T
            dW["wo"] = dx2.T @ c["o"]
            do = (dx2 @ W["wo"]).reshape(T, self.heads, self.hd).transpose(1, 0, 2)
            att = c["att"]
            datt = do @ c["vr"].transpose(0, 2, 1)
            dvr = att.transpose(0, 2, 1) @ do
            ds = att * (datt - (datt * att).sum(-1, keepdims=True)) * np.float32(1 / math.sqrt(self.hd))
            dq = ds @ c["kr"]
            dkr = ds.transpose(0, 2, 1) @ c["q"]
            rep = self.heads // self.kv_heads
            dk = dkr.reshape(self.kv_heads, rep, T, self.hd).sum(1)
            dv = dvr.reshape(self.kv_heads, rep, T, self.hd).sum(1)
            dq = _rope_backward(dq.transpose(1, 0, 2), cos, sin).reshape(T, -1)
            dk = _rope_backward(dk.transpose(1, 0, 2), cos, sin).reshape(T, -1)
            dv = dv.transpose(1, 0, 2).reshape(T, -1)
            h = c["h"]
            dW["wq"], dW["wk"], dW["wv"] = dq.T @ h, dk.T @ h, dv.T @ h
            dh = dq @ W["wq"] + dk @ W["wk"] + dv @ W["wv"]
            d, grads[f"{i}.attn_norm"] = _rms_backward(dh, c["x"], c["r1"], self.params[f"{i}.attn_norm"].astype(np.float32))
            dx = dx2 + d
            for name in LINEARS:
                # dL/dd[r, g] = sum over the group's columns of dL/dW * code; d = d0 * exp(s): dL/ds = dL/dd * d
                R, C = dW[name].shape
                dd = (dW[name].astype(np.float64) * self.codes[i][name]).reshape(R, C // GROUP, GROUP).sum(-1)
                grads[f"{i}.{name}"] = dd * self.scales(i, name)
                if self.train_codes:
                    grads[f"{i}.{name}.w"] = dW[name].astype(np.float64) * self.keep[i][name]
        return {k: np.asarray(v, np.float64) for k, v in grads.items()}


def _rope_backward(dv, cos, sin):
    """The transpose of the rotation: rotate the gradient back."""
    da, db = dv[..., 0::2], dv[..., 1::2]
    out = np.empty_like(dv)
    out[..., 0::2], out[..., 1::2] = da * cos + db * sin, -da * sin + db * cos
    return out


def _rms_backward(dy, x, r, w):
    """y = x * r * w with r = 1 / sqrt(mean(x^2) + eps) -> (dx, dw)."""
    dw = (dy * x * r).sum(0)
    g = dy * w
    dx = r * g - x * (r ** 3) * (g * x).mean(-1, keepdims=True)
    return dx.astype(np.float32), dw


def kl_loss_and_grad(student_logits, teacher_logp):
    """Mean over tokens of KL(teacher || student) and its gradient in the student's logits."""
    ls = log_softmax(student_logits.astype(np.float64))
    pt = np.exp(teacher_logp)
    n = len(ls)
    loss = float((pt * (teacher_logp - ls)).sum() / n)
    return loss, ((np.exp(ls) - pt) / n).astype(np.float32)


def teacher_logp(teacher, ids):
    return log_softmax(teacher.logits(ids).astype(np.float64))


class Adam:
    def __init__(self, params, lr, betas=(0.9, 0.99), eps=1e-12):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, betas[0], betas[1], eps, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params, grads, lr, lr_of=None):
        """lr_of(name) -> a factor on lr for that parameter (default 1)."""
        self.t += 1
        for k, g in grads.items():
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g * g
            mh, vh = self.m[k] / (1 - self.b1 ** self.t), self.v[k] / (1 - self.b2 ** self.t)
            params[k] -= lr * (1.0 if lr_of is None else lr_of(k)) * mh / (np.sqrt(vh) + self.eps)


def write_tuned(student, template, out):
    """A copy of the GPTQ file with the tuned fp16 scales (and codes, with train_codes) and norm weights; read back
    and checked."""
    tmp = out + ".tmp"
    shutil.copyfile(template, tmp)
    changed = []
    with open(tmp, "r+b") as f:
        for i in range(student.n_layers):
            for name in LINEARS:
                info = student.tensors[f"blk.{i}.{LAYER_NAMES[name]}.weight"]
                R, C = info["dims"][1], info["dims"][0]
                d16 = student.scales(i, name).astype(np.float16)
                assert np.isfinite(d16).all(), f"blk.{i}.{LAYER_NAMES[name]}: a tuned scale overflowed fp16"
                student.weight(i, name)  # the codes for the final scales
                f.seek(info["offset"])
                f.write(pack_q4_s24(student.codes[i][name], student.keep[i][name], d16))
                changed.append(info)
            for name in NORMS:
                info = student.tensors[f"blk.{i}.{LAYER_NAMES[name]}.weight"]
                assert info["type"] == GGML_F32
                f.seek(info["offset"])
                f.write(student.params[f"{i}.{name}"].astype("<f4").tobytes())
                changed.append(info)
        info = student.tensors["output_norm.weight"]
        assert info["type"] == GGML_F32
        f.seek(info["offset"])
        f.write(student.params["output_norm"].astype("<f4").tobytes())
        changed.append(info)
    # read back: same codes and masks, the tuned scales; outside the changed tensors every byte is the template's
    back = SparseStudent.from_gguf(tmp)
    for i in range(student.n_layers):
        for name in LINEARS:
            assert np.array_equal(back.codes[i][name], student.codes[i][name])
            assert np.array_equal(back.keep[i][name], student.keep[i][name])
            assert np.array_equal(back.d0[i][name], student.scales(i, name))
    with open(tmp, "rb") as fa, open(template, "rb") as fb:
        a, b = fa.read(), fb.read()
    assert len(a) == len(b)
    pos = 0
    for info in sorted(changed, key=lambda t: t["offset"]):
        assert a[pos:info["offset"]] == b[pos:info["offset"]]
        pos = info["offset"] + info["nbytes"]
    assert a[pos:] == b[pos:]
    os.replace(tmp, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", required=True, help="the GPTQ Q4_S24 GGUF (gptq_quant.py)")
    ap.add_argument("--teacher", required=True, help="the dense twin (any of our GGUFs; the eval's dense-8bit)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "work", "tokens"))
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--windows", type=int, default=256, help="calibration windows (training split only); with as many "
                    "steps as windows each is seen once: 64 windows seen 4 times overfit them (validation did not move)")
    ap.add_argument("--val-windows", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the log-scales and norm weights")
    ap.add_argument("--train-codes", action="store_true",
                    help="also train latent weights whose rounding gives the codes (quantization-aware, from the file's start)")
    ap.add_argument("--lr-weights", type=float, default=3e-5, help="peak learning rate of the latent weights")
    ap.add_argument("--steps", type=int, default=256, help="one window per step, cosine learning-rate schedule; "
                    "a fixed count, not a time limit, so that the result does not depend on the machine (~5 s a step here)")
    ap.add_argument("--log", default=None)
    args = ap.parse_args()
    t0 = time.time()
    log = open(args.log, "a") if args.log else None

    def emit(rec):
        rec["s"] = round(time.time() - t0, 1)
        print(json.dumps(rec), flush=True)
        if log:
            log.write(json.dumps(rec) + "\n")
            log.flush()

    student, teacher = SparseStudent.from_gguf(args.student, args.train_codes), Model(args.teacher)
    toks, lens = load_split(args.data, "train")
    calib = build_windows(toks, segments(lens, args.seq - 6), args.seq, np.random.default_rng(23), 0.6, args.windows,
                          fim_chunk=(32, 512), short_middle=0.5).astype(np.int64)
    vt, vl = load_split(args.data, "val")
    val = build_windows(vt, segments(vl, args.seq - 6), args.seq, np.random.default_rng(1234), 0.6, args.val_windows,
                        fim_chunk=(32, 512), short_middle=0.5).astype(np.int64)
    val_teacher = [teacher_logp(teacher, w[:-1]) for w in val]

    def validate():
        kl, nll, n = 0.0, 0.0, 0
        for w, tl in zip(val, val_teacher):
            logits, _ = student.forward(w[:-1])
            kl += kl_loss_and_grad(logits, tl)[0] * len(tl)
            ls = log_softmax(logits.astype(np.float64))
            nll += float(-ls[np.arange(len(tl)), w[1:]].sum())
            n += len(tl)
        tnll = sum(float(-tl[np.arange(len(tl)), w[1:]].sum()) for w, tl in zip(val, val_teacher))
        return {"val_kl": round(kl / n, 5), "val_nll": round(nll / n, 5), "teacher_val_nll": round(tnll / n, 5)}
    emit({"event": "start", "windows": len(calib), "seq": args.seq, "args": vars(args), **validate()})
    base_codes = [{n: c.copy() for n, c in layer.items()} for layer in student.codes]
    opt = Adam(student.params, args.lr)
    for step in range(args.steps):
        w = calib[step % len(calib)]
        ids = w[:-1]
        tl = teacher_logp(teacher, ids)
        logits, state = student.forward(ids)
        loss, dlogits = kl_loss_and_grad(logits, tl)
        grads = student.backward(dlogits, state, ids)
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        opt.step(student.params, grads, lr, lambda k: args.lr_weights / args.lr if k.endswith(".w") else 1.0)
        if (step + 1) % 8 == 0:
            emit({"event": "step", "step": step + 1, "kl": round(loss, 5), "lr": round(lr, 6)})
    emit({"event": "tuned", "steps": args.steps, "epochs": round(args.steps / len(calib), 2), **validate()})
    write_tuned(student, args.student, args.out)
    emit({"event": "written", "out": args.out, "check": "masks unchanged, blocks decode to the tuned model, other bytes = template",
          "codes_changed": int(sum((student.codes[i][n] != base_codes[i][n]).sum() for i in range(student.n_layers) for n in LINEARS))})


if __name__ == "__main__":
    main()
