"""Checkpoint files (ckpt_io.save / load) and the carry packs (save_pack / load_pack), all pack kinds."""
import lzma
import os
import shutil
import tempfile
import unittest

import numpy as np

from _common import per_group_count, random_keep_24

import ckpt_io


def bf16_values(rng, shape, scale=1.0):
    """float32 values that are exactly bfloat16 (low 16 bits zero), random signs and magnitudes."""
    a = (rng.standard_normal(shape) * scale).astype(np.float32)
    return (a.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)


def q8_values(rng, shape, keep=None):
    """bf16(q * d) with Q8_0-like codes (|q| reaches 127 in every 32-column block) and fp16 scales, as
    gguf_to_ckpt.py produces from a Q8_0 file; zero outside `keep`."""
    rows, cols = shape
    q = rng.integers(-126, 127, shape)
    keep = np.ones(shape, bool) if keep is None else keep
    q = np.where(keep, q, 0)
    for r in range(rows):
        for b in range(0, cols, 32):
            j = b + int(np.flatnonzero(keep[r, b:b + 32])[0])
            q[r, j] = 127 if rng.random() < 0.5 else -127
    d = (rng.random((rows, cols // 32)) * 1e-3 + 1e-4).astype(np.float16).astype(np.float32)
    return ckpt_io._bf16_rne((q * np.repeat(d, 32, axis=1)).astype(np.float32))


def masked(a, keep):
    """a at the kept positions, +0.0 elsewhere (a product with a bool mask would leave -0.0 there)."""
    return np.where(keep, a, np.float32(0)).astype(np.float32)


def bits_of(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


class SaveLoad(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ckpt-io-test-")
        self.addCleanup(shutil.rmtree, self.dir)

    def test_round_trip_bit_exact_over_several_parts(self):
        rng = np.random.default_rng(6)
        # every bf16 bit pattern may occur (including NaN / inf / -0 / subnormals): all must come back unchanged
        tensors = {"tok.weight": rng.integers(0, 1 << 16, (50, 16), dtype=np.uint16),
                   "layers.0.wq.weight": rng.integers(0, 1 << 16, (16, 16), dtype=np.uint16),
                   "layers.0.attn_norm.weight": rng.integers(0, 1 << 16, (16,), dtype=np.uint16),
                   "norm.weight": np.array([0x3F80, 0x8000, 0x7F80, 0xFFC1], np.uint16)}
        meta = {"config": {"dim": 16, "vocab": 50}, "note": "x"}
        old = ckpt_io.PART
        ckpt_io.PART = 97  # force several part files per stream
        try:
            head = ckpt_io.save(tensors, self.dir, "dense", meta)
        finally:
            ckpt_io.PART = old
        self.assertGreater(len(head["hi_parts"]), 1)
        self.assertGreater(len(head["lo_parts"]), 1)
        meta2, out = ckpt_io.load(self.dir, "dense")
        self.assertEqual(meta2, meta)
        self.assertEqual(list(out), list(tensors))
        for name, bits in tensors.items():
            got = out[name]
            self.assertEqual(got.dtype, np.float32, name)
            self.assertEqual(got.shape, bits.shape, name)
            np.testing.assert_array_equal(bits_of(got) >> 16, bits.astype(np.uint32), name)
            np.testing.assert_array_equal(bits_of(got) & 0xFFFF, 0, name)


class Packs(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ckpt-pack-test-")
        self.addCleanup(shutil.rmtree, self.dir)
        rng = np.random.default_rng(7)
        self.rng = rng
        # sparse24 without a given mask: some groups with fewer than 2 nonzeros (mask topped up with the first zeros)
        sp = masked(bf16_values(rng, (3, 12)), random_keep_24(rng, 3, 12))  # 36 mask bits: not a whole number of bytes
        sp[0, 0:4] = [0, 0, 0, 0]
        sp[1, 4:8] = [0, 0, 0.5, 0]
        self.sp = sp
        # sparse24 with a given mask whose kept positions may hold 0
        self.keep_f = random_keep_24(rng, 6, 40)
        f = masked(bf16_values(rng, (6, 40)), self.keep_f)
        f[2, :8] = 0
        self.f = f
        # sparse24q8x: Q8_0 values at the mask's positions, given mask
        self.keep_d = random_keep_24(rng, 4, 64)
        self.d = q8_values(rng, (4, 64), self.keep_d)
        self.entries = {
            "a.bf16": ("bf16", bf16_values(rng, (5, 7))),
            "b.sparse24": ("sparse24", sp),
            "c.q8": ("q8", (rng.standard_normal((4, 64)) * 0.02).astype(np.float32)),
            "d.sparse24q8x": ("sparse24q8x", self.d, self.keep_d),
            "e.q8x": ("q8x", q8_values(rng, (2, 96))),
            "f.sparse24": ("sparse24", f, self.keep_f),
            "g.norm": ("bf16", bf16_values(rng, (16,))),
            "h.sparse24": ("sparse24", masked(bf16_values(rng, (2, 8)), random_keep_24(rng, 2, 8)), None),
        }

    def save_and_load(self):
        ckpt_io.save_pack(self.entries, self.dir, "student", {"config": {"dim": 4}})
        return ckpt_io.load_pack(self.dir, "student")

    def test_all_kinds_in_one_pack(self):
        meta, out, masks = self.save_and_load()
        self.assertEqual(meta, {"config": {"dim": 4}})
        self.assertEqual(list(out), list(self.entries))
        for name, (kind, a, *_) in self.entries.items():
            self.assertEqual(out[name].shape, a.shape, name)
            self.assertEqual(out[name].dtype, np.float32, name)
            if kind == "q8":  # lossy: int8 codes, fp16 scale per 32 columns
                d = np.abs(a.reshape(a.shape[0], -1, 32)).max(-1, keepdims=True) / 127
                err = np.abs(out[name] - a).reshape(a.shape[0], -1, 32)
                self.assertTrue((err <= d * 0.5 + d * 2e-3).all(), name)
            else:  # every other kind is exact, bit for bit
                np.testing.assert_array_equal(bits_of(out[name]), bits_of(a), name)
        self.assertEqual(set(masks), {"b.sparse24", "d.sparse24q8x", "f.sparse24", "h.sparse24"})
        for name, keep in masks.items():
            self.assertEqual(keep.dtype, np.bool_)
            self.assertTrue((per_group_count(keep) == 2).all(), name)
            self.assertFalse(((out[name] != 0) & ~keep).any(), name)
        # given masks come back as given (kept positions at zero stay kept)
        np.testing.assert_array_equal(masks["f.sparse24"], self.keep_f)
        np.testing.assert_array_equal(masks["d.sparse24q8x"], self.keep_d)
        # derived mask: the nonzeros, topped up with the lowest free positions
        np.testing.assert_array_equal(masks["b.sparse24"][0, 0:4], [True, True, False, False])
        np.testing.assert_array_equal(masks["b.sparse24"][1, 4:8], [True, False, True, False])

    def test_keep_mask_24(self):
        w = np.array([[0, 3, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0]], np.float32)
        np.testing.assert_array_equal(ckpt_io.keep_mask_24(w), [[1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0]])

    def test_q8_exact(self):
        a = q8_values(self.rng, (3, 64))
        q, d = ckpt_io.q8_exact(a)
        np.testing.assert_array_equal(ckpt_io._bf16_rne(q.astype(np.float32) * np.repeat(d.astype(np.float32).reshape(3, 2), 32, axis=1)), a)
        self.assertIsNone(ckpt_io.q8_exact(bf16_values(self.rng, (3, 64))), "plain bf16 values are not Q8_0 values")

    def test_refuses_3_nonzeros_in_a_group(self):
        w = masked(bf16_values(self.rng, (2, 8)), random_keep_24(self.rng, 2, 8))
        w[1, 4:8] = [1, 0, 2, 3]
        with self.assertRaises((AssertionError, ValueError)):
            ckpt_io.keep_mask_24(w)
        with self.assertRaises((AssertionError, ValueError)):
            ckpt_io.save_pack({"w": ("sparse24", w)}, self.dir, "bad", {})

    def test_refuses_a_given_mask_that_is_not_2_of_4(self):
        for kind, shape in (("sparse24", (2, 8)), ("sparse24q8x", (2, 32))):
            keep = random_keep_24(self.rng, *shape)
            a = masked(bf16_values(self.rng, shape), keep) if kind == "sparse24" else q8_values(self.rng, shape, keep)
            bad = keep.copy()
            self.set_third(bad[0], 0)  # 3 kept in the first group
            with self.assertRaises((AssertionError, ValueError), msg=kind):
                ckpt_io.save_pack({"w": (kind, a, bad)}, self.dir, "bad", {})
            # a nonzero outside the given mask
            other = keep.copy()
            other[0, :4] = ~keep[0, :4]
            with self.assertRaises((AssertionError, ValueError), msg=kind):
                ckpt_io.save_pack({"w": (kind, a, other)}, self.dir, "bad", {})

    def corrupt_mask(self, flip):
        """Rewrites the pack's mask stream with `flip(bits)` applied to its unpacked bits."""
        path = os.path.join(self.dir, "student.mask")
        with open(path, "rb") as fh:
            bits = np.unpackbits(np.frombuffer(lzma.decompress(fh.read()), np.uint8)).copy()
        flip(bits)
        with open(path, "wb") as fh:
            fh.write(lzma.compress(np.packbits(bits).tobytes()))

    def test_load_refuses_a_corrupted_mask(self):
        # mask stream: b (36 bits -> 5 bytes), d (256 bits), f (240 bits), h (16 bits)
        starts = {"b": 0, "d": 40, "f": 40 + 256, "h": 40 + 256 + 240}
        cases = {
            # one extra kept position: 3 in a group (the value count no longer matches either)
            "b: 3 kept in a group": lambda bits: self.set_third(bits, starts["b"] + 4),
            "d: 3 kept in a group": lambda bits: self.set_third(bits, starts["d"]),
            "f: 3 kept in a group": lambda bits: self.set_third(bits, starts["f"]),
            # same number of kept positions overall, but 3 in one group and 1 in another: only a per-group check sees it
            "f: 3 + 1 kept in two groups": lambda bits: self.move_one(bits, starts["f"]),
            "d: 3 + 1 kept in two groups": lambda bits: self.move_one(bits, starts["d"]),
        }
        for label, flip in cases.items():
            with self.subTest(label):
                self.save_and_load()
                self.corrupt_mask(flip)
                with self.assertRaises((AssertionError, ValueError)):
                    ckpt_io.load_pack(self.dir, "student")

    @staticmethod
    def set_third(bits, start):
        g = bits[start:start + 4]
        bits[start + int(np.flatnonzero(g == 0)[0])] = 1

    @staticmethod
    def move_one(bits, start):
        g0, g1 = bits[start:start + 4], bits[start + 4:start + 8]
        bits[start + int(np.flatnonzero(g0 == 0)[0])] = 1
        bits[start + 4 + int(np.flatnonzero(g1 == 1)[0])] = 0


if __name__ == "__main__":
    unittest.main()
