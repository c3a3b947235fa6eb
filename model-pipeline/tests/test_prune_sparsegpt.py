"""SparseGPT 2:4 pruning: prune_sparsegpt.sparsegpt_24 on one matrix, prune_model on a tiny Transformer."""
import unittest

import numpy as np
import torch

from _common import correlated_inputs, hessian, output_error, per_group_count

import prune_sparsegpt as ps
from model import Config, Transformer

R, C, N = 32, 256, 2048


def magnitude_24(W):
    """Magnitude 2:4 pruning: keep the 2 largest |w| of every 4 input columns, no weight update."""
    a = np.abs(W).reshape(W.shape[0], -1, 4)
    order = np.argsort(-a, axis=-1, kind="stable")[..., :2]
    keep = np.zeros(a.shape, bool)
    np.put_along_axis(keep, order, True, -1)
    keep = keep.reshape(W.shape)
    return W * keep, keep


class SparseGpt24(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(min(2, torch.get_num_threads()))
        rng = np.random.default_rng(5)
        cls.X = correlated_inputs(rng, C, N)
        cls.H = hessian(cls.X)
        cls.W = (rng.standard_normal((R, C)) * 0.05).astype(np.float32)
        Wn, keep = ps.sparsegpt_24(torch.from_numpy(cls.W.copy()), torch.from_numpy(cls.H.astype(np.float32)))
        cls.Wn, cls.keep = Wn.numpy().copy(), keep.numpy().copy()

    def test_exact_24_pattern(self):
        Wn, keep = self.Wn, self.keep
        self.assertEqual(keep.dtype, np.bool_)
        self.assertEqual(keep.shape, (R, C))
        self.assertTrue((per_group_count(keep) == 2).all(), "the mask must keep exactly 2 of every 4 input columns")
        self.assertTrue((Wn[~keep] == 0).all(), "pruned weights must be exactly 0")
        self.assertTrue((per_group_count(Wn) <= 2).all())
        self.assertTrue(np.isfinite(Wn).all())
        # the kept weights were updated (OBS error compensation), not just copied
        self.assertGreater(np.abs(Wn[keep] - self.W[keep]).max(), 1e-4)

    def test_lower_reconstruction_error_than_magnitude_pruning(self):
        e_sgpt = output_error(self.W, self.Wn, self.X)
        Wm, _ = magnitude_24(self.W)
        e_mag = output_error(self.W, Wm, self.X)
        # also better than keeping SparseGPT's own mask without its weight update
        e_mask_only = output_error(self.W, self.W * self.keep, self.X)
        msg = f"SparseGPT {e_sgpt:.4g}, magnitude {e_mag:.4g}, SparseGPT mask without update {e_mask_only:.4g}"
        self.assertLess(e_sgpt, 0.5 * e_mag, msg)
        self.assertLess(e_sgpt, 0.5 * e_mask_only, msg)

    def test_saliency_uses_the_hessian(self):
        # independent input features of very different energy: the best 2:4 mask keeps the 2 largest w^2 * H_jj
        # of each group (OBS saliency), not the 2 largest |w|; SparseGPT must find it
        rng = np.random.default_rng(11)
        cols = 64
        X = rng.standard_normal((cols, 8192)) * np.exp(rng.uniform(-2, 2, (cols, 1)))
        H = hessian(X)
        W = (rng.standard_normal((R, cols)) * 0.05).astype(np.float32)
        Wn, keep = ps.sparsegpt_24(torch.from_numpy(W.copy()), torch.from_numpy(H.astype(np.float32)))
        Wn, keep = Wn.numpy(), keep.numpy()
        _, best = magnitude_24(W * np.sqrt(np.diag(H))[None, :])
        agree = (keep.reshape(R, -1, 4) == best.reshape(R, -1, 4)).all(-1).mean()
        self.assertGreater(agree, 0.95, f"mask agrees with the w^2 H_jj choice in only {agree:.0%} of the groups")
        Wm, _ = magnitude_24(W)
        self.assertLess(output_error(W, Wn, X), 0.7 * output_error(W, Wm, X))

    def test_deterministic(self):
        Wn, keep = ps.sparsegpt_24(torch.from_numpy(self.W.copy()), torch.from_numpy(self.H.astype(np.float32)))
        np.testing.assert_array_equal(keep.numpy(), self.keep)
        np.testing.assert_array_equal(Wn.numpy(), self.Wn)

    def test_hessian_not_modified_and_dead_columns(self):
        X = self.X.copy()
        X[[3, 200]] = 0  # input features that never fire: diag(H) == 0
        H = torch.from_numpy(hessian(X).astype(np.float32))
        H0 = H.clone()
        Wn, keep = ps.sparsegpt_24(torch.from_numpy(self.W.copy()), H)
        self.assertTrue(torch.equal(H, H0), "sparsegpt_24 must not modify the caller's Hessian")
        Wn, keep = Wn.numpy(), keep.numpy()
        self.assertTrue(np.isfinite(Wn).all())
        self.assertTrue((Wn[:, [3, 200]] == 0).all())
        self.assertTrue((per_group_count(keep) == 2).all())
        self.assertTrue((Wn[~keep] == 0).all())


class PruneModel(unittest.TestCase):
    """prune_model on a 2-layer Transformer: every linear weight 2:4, masks returned, check_24 passes."""

    def test_tiny_transformer(self):
        torch.manual_seed(0)
        cfg = Config(vocab=64, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn=64, ctx=32)
        model = Transformer(cfg).eval()
        dense = {n: p.detach().clone() for n, p in model.named_parameters()}
        calib = torch.randint(0, cfg.vocab, (6, 24))
        masks, report = ps.prune_model(model, calib, "cpu", batch=4)
        linear = {f"layers.{i}.{n}.weight" for i in range(cfg.n_layers) for n in ("wq", "wk", "wv", "wo", "w1", "w3", "w2")}
        self.assertEqual(set(masks), linear)
        params = dict(model.named_parameters())
        for name, keep in masks.items():
            w = params[name].detach().numpy()
            keep = keep.numpy()
            self.assertTrue((per_group_count(keep) == 2).all(), name)
            self.assertTrue((w[~keep] == 0).all(), name)
        ps.check_24(model, masks)
        # the non-linear parameters are untouched
        for n, p in params.items():
            if n not in masks:
                self.assertTrue(torch.equal(p.detach(), dense[n]), n)
        self.assertEqual(len(report), len(linear))
        for r in report:
            self.assertEqual(r["density"], 0.5)
            self.assertTrue(0 < r["rel_recon_err"] < 1, r)
        with torch.no_grad():
            self.assertTrue(torch.isfinite(model(calib)).all())

    def test_check_24_refuses_a_dense_weight(self):
        cfg = Config(vocab=16, dim=16, n_layers=1, n_heads=2, n_kv_heads=1, ffn=32, ctx=8)
        model = Transformer(cfg)
        with self.assertRaises(AssertionError):
            ps.check_24(model, {"layers.0.wq.weight": None})


if __name__ == "__main__":
    unittest.main()
