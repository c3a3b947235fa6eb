"""tune_scales: the student's forward pass, its hand-written gradients, and the file it writes."""
import os
import tempfile
import unittest

import numpy as np

from _common import REPO, random_keep_24

import gptq_quant as gq
import tune_scales as ts

SPARSE = os.path.join(REPO, "models", "sparse-complete-coder-34m-sparse-q4_s24.gguf")


def tiny_student(seed=0, V=64, D=128, F=256, layers=2, heads=4, kv_heads=2):
    """A 2-layer Llama with random 2:4 codes: big enough for every code path (GQA, two scale groups per row)."""
    rng = np.random.default_rng(seed)
    base = object.__new__(gq.Model)
    base.heads, base.kv_heads, base.hd, base.eps, base.base, base.n_layers = heads, kv_heads, D // heads, 1e-5, 10000.0, layers
    base.emb = rng.standard_normal((V, D)).astype(np.float32)
    base.norm = (1 + 0.1 * rng.standard_normal(D)).astype(np.float32)
    shapes = {"wq": (D, D), "wk": (D * kv_heads // heads, D), "wv": (D * kv_heads // heads, D), "wo": (D, D),
              "w1": (F, D), "w3": (F, D), "w2": (D, F)}
    codes, keep, d16, base.layers = [], [], [], []
    for _ in range(layers):
        c, k, d = {}, {}, {}
        for name, (R, C) in shapes.items():
            k[name] = random_keep_24(rng, R, C)
            c[name] = (rng.integers(-8, 8, (R, C)) * k[name]).astype(np.int8)
            d[name] = (rng.uniform(0.5, 1.5, (R, C // 128)) * 0.3 / np.sqrt(C)).astype(np.float16)
        codes.append(c), keep.append(k), d16.append(d)
        base.layers.append({"attn_norm": (1 + 0.1 * rng.standard_normal(D)).astype(np.float32),
                            "ffn_norm": (1 + 0.1 * rng.standard_normal(D)).astype(np.float32)})
    return ts.SparseStudent(base, codes, keep, d16), base


def reference_logits(student, base, ids):
    """gptq_quant.Model's own forward (the GPTQ script's model) on the student's current weights."""
    for i, layer in enumerate(base.layers):
        layer.update({n: student.weight(i, n) for n in ts.LINEARS})
        layer.update({n: student.params[f"{i}.{n}"].astype(np.float32) for n in ts.NORMS})
    base.norm = student.params["output_norm"].astype(np.float32)
    return base.logits(ids)


class StudentGradients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.student, cls.base = tiny_student()
        rng = np.random.default_rng(1)
        cls.ids = rng.integers(0, 64, 12)
        cls.teacher = ts.log_softmax(rng.standard_normal((12, 64)) * 2)

    def loss(self):
        return ts.kl_loss_and_grad(self.student.forward(self.ids)[0], self.teacher)[0]

    def test_forward_matches_the_gptq_model(self):
        student, base = tiny_student(seed=3)
        student.params["0.wq"] += 0.05  # tuned scales, not just the file's
        student.params["1.ffn_norm"] *= 1.1
        np.testing.assert_allclose(student.forward(self.ids)[0], reference_logits(student, base, self.ids), rtol=1e-4, atol=1e-4)

    def test_gradients_match_finite_differences(self):
        logits, state = self.student.forward(self.ids)
        loss, dlogits = ts.kl_loss_and_grad(logits, self.teacher)
        grads = self.student.backward(dlogits, state, self.ids)
        self.assertEqual(set(grads), set(self.student.params))
        rng = np.random.default_rng(2)
        checked = 0
        for name in sorted(self.student.params):
            p = self.student.params[name]
            for flat in rng.choice(p.size, 2, replace=False):
                idx = np.unravel_index(flat, p.shape)
                h = 1e-2 if name.split(".")[-1] in ts.LINEARS else 1e-2 * max(1.0, abs(p[idx]))
                old = p[idx]
                p[idx] = old + h
                up = self.loss()
                p[idx] = old - h
                down = self.loss()
                p[idx] = old
                numeric = (up - down) / (2 * h)
                # float32 forward passes: the differences agree to ~3e-4 where the gradients are 0.01-0.8
                self.assertLess(abs(numeric - grads[name][idx]), 1e-3 + 2e-2 * abs(numeric),
                                f"{name}{idx}: backprop {grads[name][idx]:.6g}, finite difference {numeric:.6g}")
                checked += 1
        self.assertEqual(checked, 2 * (2 * (7 + 2) + 1))

    def test_adam_lowers_the_loss(self):
        student, _ = tiny_student(seed=5)
        before = ts.kl_loss_and_grad(student.forward(self.ids)[0], self.teacher)[0]
        opt = ts.Adam(student.params, 1e-2)
        for _ in range(20):
            logits, state = student.forward(self.ids)
            _, dlogits = ts.kl_loss_and_grad(logits, self.teacher)
            opt.step(student.params, student.backward(dlogits, state, self.ids), 1e-2)
        after = ts.kl_loss_and_grad(student.forward(self.ids)[0], self.teacher)[0]
        self.assertLess(after, 0.9 * before)


class TrainCodes(unittest.TestCase):
    """Quantization-aware mode: latent weights whose rounding gives the codes, started at the file's weights."""

    def test_starts_exactly_at_the_file_and_trains_codes_on_the_mask_and_grid(self):
        fixed, _ = tiny_student(seed=6)
        twin, base = tiny_student(seed=6)
        student = ts.SparseStudent(base, twin.codes, twin.keep,
                                   [{n: s.astype(np.float16) for n, s in d.items()} for d in twin.d0], train_codes=True)
        ids = np.random.default_rng(8).integers(0, 64, 12)
        teacher = ts.log_softmax(np.random.default_rng(9).standard_normal((12, 64)) * 2)
        np.testing.assert_array_equal(student.forward(ids)[0], fixed.forward(ids)[0])
        start_codes = [{n: c.copy() for n, c in layer.items()} for layer in student.codes]
        before = ts.kl_loss_and_grad(student.forward(ids)[0], teacher)[0]
        opt = ts.Adam(student.params, 1e-2)
        for _ in range(15):
            logits, state = student.forward(ids)
            _, dlogits = ts.kl_loss_and_grad(logits, teacher)
            grads = student.backward(dlogits, state, ids)
            self.assertTrue(all((grads[f"{i}.{n}.w"][~student.keep[i][n]] == 0).all() for i in range(2) for n in ts.LINEARS))
            opt.step(student.params, grads, 1e-2, lambda k: 0.3 if k.endswith(".w") else 1.0)
        after = ts.kl_loss_and_grad(student.forward(ids)[0], teacher)[0]
        self.assertLess(after, 0.9 * before)
        changed = sum(int((student.codes[i][n] != start_codes[i][n]).sum()) for i in range(2) for n in ts.LINEARS)
        self.assertGreater(changed, 0)
        for i in range(2):
            for n in ts.LINEARS:
                c = student.codes[i][n]
                self.assertTrue((c[~student.keep[i][n]] == 0).all() and c.min() >= -8 and c.max() <= 7)
                np.testing.assert_array_equal(student.weight(i, n), (c * np.repeat(student.scales(i, n), 128, axis=1)).astype(np.float32))


@unittest.skipUnless(os.path.exists(SPARSE), "the bundled sparse model is not there")
class BundledModelFile(unittest.TestCase):
    def test_reads_the_bundled_file_and_writes_only_scales_and_norms(self):
        student = ts.SparseStudent.from_gguf(SPARSE)
        ids = np.array([32013, 32016, 1, 2, 3, 32015, 4, 5, 32017, 6], np.int64)
        model = gq.Model(SPARSE)  # dequantizes the same file its own way
        np.testing.assert_allclose(student.forward(ids)[0], model.logits(ids), rtol=1e-3, atol=1e-3)
        rng = np.random.default_rng(4)
        for name, p in student.params.items():
            p += rng.uniform(-0.02, 0.02, p.shape) * (1 if name.split(".")[-1] in ts.LINEARS else np.abs(p))
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "tuned.gguf")
            ts.write_tuned(student, SPARSE, out)  # checks codes, masks, scales and the untouched bytes itself
            back = ts.SparseStudent.from_gguf(out)
            for name in ("output_norm", "3.attn_norm", "7.ffn_norm"):
                np.testing.assert_array_equal(back.params[name], student.params[name].astype(np.float32))
            np.testing.assert_array_equal(back.scales(2, "w2"), student.scales(2, "w2").astype(np.float16))
            self.assertEqual(os.path.getsize(out), os.path.getsize(SPARSE))

    def test_writes_trained_codes(self):
        student = ts.SparseStudent.from_gguf(SPARSE, train_codes=True)
        d = np.repeat(student.scales(5, "wo"), 128, axis=1)
        student.params["5.wo.w"] += 0.7 * d * student.keep[5]["wo"]  # moves most kept codes up by one
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "tuned.gguf")
            ts.write_tuned(student, SPARSE, out)
            back = ts.SparseStudent.from_gguf(out)
            original = ts.SparseStudent.from_gguf(SPARSE)
            self.assertGreater(int((back.codes[5]["wo"] != original.codes[5]["wo"]).sum()), 0.5 * student.keep[5]["wo"].sum())
            np.testing.assert_array_equal(back.codes[5]["wo"], student.codes[5]["wo"])
            np.testing.assert_array_equal(back.codes[4]["wo"], original.codes[4]["wo"])
            np.testing.assert_array_equal(back.keep[5]["wo"], original.keep[5]["wo"])


if __name__ == "__main__":
    unittest.main()
