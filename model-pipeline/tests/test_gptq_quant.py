"""GPTQ to the 2:4 sparse 4-bit grid (Q4_S24, native-kernels/FORMAT.md) and to Q4_0: gptq_quant.gptq."""
import unittest

import numpy as np

from _common import correlated_inputs, hessian, output_error, per_group_count, random_keep_24

import gptq_quant as gq

R, C, N = 24, 256, 2048  # 24 output rows, 256 input columns (one Q4_S24 block, two scale groups), 2048 calibration tokens


def rtn_with_scales(W, keep, d16, group):
    """Plain round to nearest on the same grid with the same per-row, per-group scales (no error feedback)."""
    d = np.repeat(d16.astype(np.float64), group, axis=1)
    q = np.clip(np.rint(W / np.where(d == 0, 1.0, d)), -8, 7) * keep
    return q * d


def layer_problem(seed):
    """One 2:4 layer and its calibration: (X, H, keep, W)."""
    rng = np.random.default_rng(seed)
    X = correlated_inputs(rng, C, N)
    keep = random_keep_24(rng, R, C)
    return X, hessian(X), keep, (rng.standard_normal((R, C)) * 0.05 * keep).astype(np.float32)


class GptqQ4S24(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.X, cls.H, cls.keep, cls.W = layer_problem(1)
        cls.codes, cls.d16, cls.Q = gq.gptq(cls.W, cls.H, cls.keep, 128)

    def test_keeps_exactly_the_given_mask(self):
        Q, codes, keep = self.Q, self.codes, self.keep
        self.assertEqual(Q.shape, (R, C))
        self.assertTrue((Q[~keep] == 0).all(), "a pruned position holds a nonzero after GPTQ")
        self.assertTrue((codes[~keep] == 0).all(), "a pruned position holds a nonzero code")
        self.assertTrue((per_group_count(Q) <= 2).all(), "more than 2 nonzeros in a group of 4")
        # the kept positions are the mask's, not re-chosen: most kept weights stay nonzero (small ones may round to 0)
        self.assertGreater(((Q != 0) & keep).sum(), 0.8 * keep.sum())
        # and the result is storable as Q4_S24 with that very mask, bit for bit
        raw = gq.pack_q4_s24(codes, keep, self.d16)
        self.assertEqual(len(raw), R * (C // 256) * 100)
        np.testing.assert_array_equal(gq.unpack_q4_s24(raw, R, C), self.Q.astype(np.float32))

    def test_values_on_the_q4_s24_grid(self):
        codes, d16, Q = self.codes, self.d16, self.Q
        self.assertEqual(codes.dtype, np.int8)
        self.assertTrue(codes.min() >= -8 and codes.max() <= 7, (codes.min(), codes.max()))
        self.assertEqual(d16.dtype, np.float16)
        self.assertEqual(d16.shape, (R, C // 128), "one fp16 scale per 128 input columns of each row")
        self.assertTrue(np.isfinite(d16).all() and (d16 != 0).all())
        # every value is d * q with the fp16 scale of its row's 128-column group, exactly
        np.testing.assert_array_equal(Q, codes.astype(np.float64) * np.repeat(d16.astype(np.float64), 128, axis=1))
        # and Q / d is an integer in [-8, 7] (independent of the codes array)
        t = Q / np.repeat(d16.astype(np.float64), 128, axis=1)
        np.testing.assert_array_equal(t, np.rint(t))
        self.assertTrue((np.abs(t + 0.5) <= 7.5).all())

    def test_lower_output_error_than_round_to_nearest(self):
        W, X, keep = self.W, self.X, self.keep
        e_gptq = output_error(W, self.Q, X)
        e_same_scales = output_error(W, rtn_with_scales(W, keep, self.d16, 128), X)
        codes, keep_rtn, d16 = gq.rtn_q4_s24(W)  # the converter's round to nearest (its own absmax scales)
        np.testing.assert_array_equal(keep_rtn, keep)
        e_converter = output_error(W, gq.unpack_q4_s24(gq.pack_q4_s24(codes, keep_rtn, d16), R, C), X)
        msg = f"GPTQ {e_gptq:.4g}, RTN same scales {e_same_scales:.4g}, converter RTN {e_converter:.4g}"
        # on correlated inputs the error feedback must win clearly, not by noise
        self.assertLess(e_gptq, 0.8 * e_same_scales, msg)
        self.assertLess(e_gptq, 0.8 * e_converter, msg)
        # rel_err (the script's log metric, trace form of the same error) agrees
        self.assertLess(gq.rel_err(W, self.Q, self.H), gq.rel_err(W, rtn_with_scales(W, keep, self.d16, 128), self.H))

    def test_deterministic(self):
        codes, d16, Q = gq.gptq(self.W.copy(), self.H.copy(), self.keep.copy(), 128)
        np.testing.assert_array_equal(codes, self.codes)
        np.testing.assert_array_equal(d16, self.d16)
        np.testing.assert_array_equal(Q, self.Q)

    def test_inputs_not_modified(self):
        W, H, keep = self.W.copy(), self.H.copy(), self.keep.copy()
        gq.gptq(W, H, keep, 128)
        np.testing.assert_array_equal(W, self.W)
        np.testing.assert_array_equal(H, self.H)
        np.testing.assert_array_equal(keep, self.keep)

    def test_dead_input_columns(self):
        # an input feature that is always 0 (diag(H) == 0): GPTQ still succeeds and sets those weights to 0
        X = self.X.copy()
        X[[5, 130]] = 0
        codes, d16, Q = gq.gptq(self.W, hessian(X), self.keep, 128)
        self.assertTrue(np.isfinite(Q).all())
        self.assertTrue((Q[:, [5, 130]] == 0).all())
        self.assertTrue((Q[~self.keep] == 0).all())
        self.assertTrue(codes.min() >= -8 and codes.max() <= 7)


class RefitAndActOrder(unittest.TestCase):
    """The variants quantize_layer tries: scales refit to the codes, fixed scales, act-order; all on the same grid."""

    @classmethod
    def setUpClass(cls):
        cls.X, cls.H, cls.keep, cls.W = layer_problem(7)

    def test_refit_scales_lower_the_output_error_for_the_same_codes(self):
        W, H, keep = self.W, self.H, self.keep
        codes, d16, Q = gq.gptq(W, H, keep, 128)
        refit = gq.refit_scales(W, H, codes, d16, 128)
        self.assertEqual((refit.dtype, refit.shape), (np.float16, d16.shape))
        self.assertTrue(np.isfinite(refit).all() and (refit != 0).all())
        before, after = gq.rel_err(W, Q, H), gq.rel_err(W, gq.dequantize(codes, refit, 128), H)
        self.assertLess(after, before, f"refit {after:.4g} vs GPTQ's own scales {before:.4g}")
        # least squares: no fp16 scale one step away from the refit one does better on its row (up to rounding)
        row_err = lambda d: np.einsum("rc,cd,rd->r", *(lambda D: (D, H, D))(W - gq.dequantize(codes, d, 128)))
        base = row_err(refit)
        for g in range(refit.shape[1]):
            for step in (np.float16(np.inf), np.float16(-np.inf)):
                moved = refit.copy()
                moved[:, g] = np.nextafter(refit[:, g], step)
                self.assertTrue((row_err(moved) >= base * (1 - 1e-9)).all())

    def test_a_group_with_no_nonzero_code_keeps_its_scale(self):
        codes, d16, _ = gq.gptq(self.W, self.H, self.keep, 128)
        codes = codes.copy()
        codes[3, 128:] = 0
        refit = gq.refit_scales(self.W, self.H, codes, d16, 128)
        self.assertEqual(refit[3, 1], d16[3, 1])

    def test_fixed_scales_in_act_order_stay_on_the_grid_and_the_mask(self):
        W, H, keep = self.W, self.H, self.keep
        _, d16, _ = gq.gptq(W, H, keep, 128)
        order = np.argsort(-np.diag(H), kind="stable")
        codes, d16b, Q = gq.gptq(W, H, keep, 128, scales=d16, order=order)
        np.testing.assert_array_equal(d16b, d16)
        self.assertTrue((codes[~keep] == 0).all() and codes.min() >= -8 and codes.max() <= 7)
        np.testing.assert_array_equal(Q, gq.dequantize(codes, d16, 128))
        np.testing.assert_array_equal(gq.unpack_q4_s24(gq.pack_q4_s24(codes, keep, d16), R, C), Q.astype(np.float32))
        self.assertLess(gq.rel_err(W, Q, H), gq.rel_err(W, rtn_with_scales(W, keep, d16, 128), H))
        with self.assertRaises(AssertionError):
            gq.gptq(W, H, keep, 128, order=order)  # choosing scales on the way needs left to right

    def test_quantize_layer_keeps_the_best_variant(self):
        W, H, keep = self.W, self.H, self.keep
        codes, d16, Q, name, errs = gq.quantize_layer(W, H, keep, 128)
        self.assertEqual(set(errs), {"gptq", "gptq+refit", "static+refit", "static-act-order+refit"})
        self.assertEqual(errs[name], min(errs.values()))
        self.assertAlmostEqual(gq.rel_err(W, Q, H), errs[name], places=6)
        self.assertLess(errs[name], errs["gptq"])
        np.testing.assert_array_equal(Q, gq.dequantize(codes, d16, 128))
        self.assertTrue((codes[~keep] == 0).all())


class ChooseScale(unittest.TestCase):
    def test_never_worse_than_absmax_and_often_better(self):
        # the scale search (grid around absmax / 8, diag(H)-weighted error) against round to nearest's d = vmax / -8
        rng = np.random.default_rng(12)
        Wg = rng.standard_normal((200, 128)) * 0.05
        keep_g = random_keep_24(rng, 200, 128).astype(np.float64)
        Wg *= keep_g
        hdiag = np.exp(rng.uniform(-1, 1, 128))
        d = gq.choose_scale(Wg, keep_g, hdiag)
        self.assertTrue(np.array_equal(d, gq.fp16_round(d)), "scales must be fp16 values")

        def err(d):
            ds = np.where(d == 0, 1.0, d)
            q = np.clip(np.rint(Wg / ds[:, None]), -8, 7) * keep_g
            return (((Wg - q * d[:, None]) ** 2) * hdiag[None, :]).sum(1)
        a = np.abs(Wg) * keep_g
        vmax = Wg[np.arange(200), a.argmax(1)]
        e_best, e_absmax = err(d), err(gq.fp16_round(vmax / -8.0))
        self.assertTrue((e_best <= e_absmax).all())
        self.assertGreater((e_best < e_absmax).mean(), 0.5)


class GptqQ4_0(unittest.TestCase):
    """The dense twin's grid: codes in [-8, 7], one fp16 scale per 32 input columns."""

    def test_grid_and_error(self):
        rng = np.random.default_rng(2)
        X = correlated_inputs(rng, 128, 1024)
        H = hessian(X)
        W = (rng.standard_normal((16, 128)) * 0.05).astype(np.float32)
        keep = np.ones(W.shape, bool)
        codes, d16, Q = gq.gptq(W, H, keep, 32)
        self.assertEqual(d16.shape, (16, 128 // 32))
        self.assertTrue(codes.min() >= -8 and codes.max() <= 7)
        np.testing.assert_array_equal(Q, codes * np.repeat(d16.astype(np.float64), 32, axis=1))
        np.testing.assert_array_equal(gq.unpack_q4_0(gq.pack_q4_0(codes, d16), 16, 128), Q.astype(np.float32))
        e_gptq = output_error(W, Q, X)
        e_rtn = output_error(W, rtn_with_scales(W, keep, d16, 32), X)
        rc, rd = gq.rtn_q4_0(W)
        e_conv = output_error(W, gq.unpack_q4_0(gq.pack_q4_0(rc, rd), 16, 128), X)
        self.assertLess(e_gptq, 0.8 * min(e_rtn, e_conv), f"GPTQ {e_gptq:.4g}, RTN {e_rtn:.4g}, converter {e_conv:.4g}")


class Q4S24Packing(unittest.TestCase):
    def test_pack_unpack_round_trip_and_layout(self):
        rng = np.random.default_rng(3)
        rows, cols = 3, 512
        keep = random_keep_24(rng, rows, cols)
        codes = (rng.integers(-8, 8, (rows, cols)) * keep).astype(np.int8)
        d16 = (rng.random((rows, cols // 128)) * 0.01 + 1e-3).astype(np.float16)
        raw = gq.pack_q4_s24(codes, keep, d16)
        self.assertEqual(len(raw), rows * (cols // 256) * 100)
        deq = gq.unpack_q4_s24(raw, rows, cols)
        np.testing.assert_array_equal(deq, (codes * np.repeat(d16.astype(np.float32), 128, axis=1)).astype(np.float32))
        # FORMAT.md: block = d[2] fp16, then qs, then idx; d[0] scales columns 0..127, d[1] 128..255
        b = np.frombuffer(raw, np.uint8).reshape(rows, cols // 256, 100)
        np.testing.assert_array_equal(b[..., :4].copy().view("<f2").reshape(rows, -1), d16)
        # sub-block 0 of row 0: kept value k = 0 (group 0, slot 0) in the low nibble of qs[0], position in idx[0] bits 0..1
        p0 = int(np.flatnonzero(keep[0, :4])[0])
        self.assertEqual(b[0, 0, 4] & 15, codes[0, p0] + 8)
        self.assertEqual(b[0, 0, 68] & 3, p0)

    def test_refuses_a_mask_that_is_not_2_of_4(self):
        keep = np.zeros((1, 256), bool)
        keep[0, :3] = True  # 3 kept in the first group
        keep[0, 4:] = random_keep_24(np.random.default_rng(4), 1, 252)
        with self.assertRaises(AssertionError):
            gq.pack_q4_s24(np.zeros((1, 256), np.int8), keep, np.ones((1, 2), np.float16))


if __name__ == "__main__":
    unittest.main()
