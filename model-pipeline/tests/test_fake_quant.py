"""fake_quant: the forward pass of quantization-aware recovery sees exactly what the converter will store."""
import unittest

import numpy as np
import torch

from _common import random_keep_24

import ckpt_io
import fake_quant as fq
import gptq_quant as gq


def converter_weights(W):
    """What the pipeline stores for a float weight, dequantized: the checkpoint keeps bf16 (train.save_model), the
    export writes F16, and `npm run convert --sparse24` rounds to nearest (its bit-exact twin in gptq_quant)."""
    W16 = ckpt_io._bf16_rne(W).astype(np.float16).astype(np.float32)
    codes, keep, d16 = gq.rtn_q4_s24(W16)
    return gq.unpack_q4_s24(gq.pack_q4_s24(codes, keep, d16), *W.shape)


class FakeQuant(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(0)
        self.keep = random_keep_24(rng, 16, 512)
        W = rng.standard_normal((16, 512)).astype(np.float32) * 0.05 * self.keep
        W[3, 0:128] = 0                      # a group with nothing kept that is nonzero
        W[4, 128:256] = np.where(self.keep[4, 128:256], 0.01, 0)  # all equal: ties everywhere
        W[5, 256] = 0.5 if self.keep[5, 256] else W[5, 256]        # an outlier
        W[6, :] = W[6, :] * 1e-5                                   # tiny scales, deep in fp16's range
        self.W = W

    def test_rounds_through_the_checkpoints_bf16_like_save_model(self):
        W = torch.from_numpy(self.W)
        np.testing.assert_array_equal(ckpt_io._bf16_rne(self.W), W.to(torch.bfloat16).float().numpy())
        # fp32 weights that bf16 rounds differently than fp16 does: the stored model is the bf16 one's
        self.assertGreater(int((converter_weights(self.W) != gq.unpack_q4_s24(gq.pack_q4_s24(
            *gq.rtn_q4_s24(self.W.astype(np.float16).astype(np.float32))), *self.W.shape)).sum()), 0)

    def test_equals_the_converters_round_to_nearest_bit_for_bit(self):
        got = fq.q4_s24_round_to_nearest(torch.from_numpy(self.W)).numpy()
        np.testing.assert_array_equal(got, converter_weights(self.W))
        self.assertTrue((got[~self.keep] == 0).all())

    def test_straight_through_gradient(self):
        W = torch.from_numpy(self.W).requires_grad_(True)
        G = torch.randn(W.shape)
        (fq.fake_quant_q4_s24(W) * G).sum().backward()
        torch.testing.assert_close(W.grad, G)

    def test_linear_layers_compute_with_the_stored_weights_and_train_the_latent_ones(self):
        torch.manual_seed(0)
        lin = torch.nn.Linear(512, 16, bias=False)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(self.W))
        keys = set(lin.state_dict())
        fq.quantize_in_forward([lin])
        x = torch.randn(3, 512)
        y = lin(x)
        torch.testing.assert_close(y, x @ torch.from_numpy(converter_weights(self.W)).T)
        y.sum().backward()
        self.assertIsNotNone(lin.weight.grad)
        self.assertEqual(set(lin.state_dict()), keys)
        np.testing.assert_array_equal(lin.state_dict()["weight"].numpy(), self.W)  # saved: the latent weights


if __name__ == "__main__":
    unittest.main()
