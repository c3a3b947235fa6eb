"""export_gguf.py -> gguf_to_ckpt.py on a tiny 2:4 model (the real scripts, run as the pipeline runs them), the
pipeline's own GGUF reader (gptq_quant.read_gguf) on the exported file, and gguf_to_ckpt.q4_s24_keep on a Q4_S24
tensor. Needs llama.cpp's gguf-py from node-llama-cpp's llama.cpp tree (present after `npm install`)."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

from _common import PIPELINE, REPO, per_group_count, random_keep_24

import ckpt_io
import gptq_quant as gq

GGUF_PY = os.path.join(REPO, "node_modules", "node-llama-cpp", "llama", "llama.cpp", "gguf-py")
VOCAB = 32256  # export_gguf.py copies deepseek-coder's tokenizer: the vocabulary size is fixed
CFG = {"vocab": VOCAB, "dim": 16, "n_layers": 2, "n_heads": 2, "n_kv_heads": 1, "ffn": 32,
       "rope_base": 10000.0, "norm_eps": 1e-05, "ctx": 64}


def f16_exact_bf16_bits(rng, shape, keep=None):
    """bf16 bit patterns whose values F16 holds exactly (normal F16 range), so the F16 export loses nothing."""
    mag = rng.uniform(2.0 ** -10, 2.0, shape).astype(np.float32)
    a = np.where(rng.random(shape) < 0.5, -mag, mag).astype(np.float32)
    if keep is not None:
        a = np.where(keep, a, np.float32(0)).astype(np.float32)
    return (a.view(np.uint32) >> 16).astype(np.uint16)


def tiny_checkpoint(rng, dense_linear=None):
    hd = CFG["dim"] // CFG["n_heads"]
    shapes = {"wq": (CFG["n_heads"] * hd, CFG["dim"]), "wk": (CFG["n_kv_heads"] * hd, CFG["dim"]),
              "wv": (CFG["n_kv_heads"] * hd, CFG["dim"]), "wo": (CFG["dim"], CFG["n_heads"] * hd),
              "w1": (CFG["ffn"], CFG["dim"]), "w3": (CFG["ffn"], CFG["dim"]), "w2": (CFG["dim"], CFG["ffn"])}
    t = {"tok.weight": f16_exact_bf16_bits(rng, (VOCAB, CFG["dim"]))}
    for i in range(CFG["n_layers"]):
        t[f"layers.{i}.attn_norm.weight"] = f16_exact_bf16_bits(rng, (CFG["dim"],))
        t[f"layers.{i}.ffn_norm.weight"] = f16_exact_bf16_bits(rng, (CFG["dim"],))
        for m, shape in shapes.items():
            name = f"layers.{i}.{m}.weight"
            t[name] = f16_exact_bf16_bits(rng, shape, None if name == dense_linear else random_keep_24(rng, *shape))
    t["norm.weight"] = f16_exact_bf16_bits(rng, (CFG["dim"],))
    return t


def run_script(script, *args):
    return subprocess.run([sys.executable, os.path.join(PIPELINE, script), *args], capture_output=True, text=True, timeout=240)


def write_q4_s24_gguf(path, name, raw, rows, cols):
    """A minimal GGUF v3 holding one ggml type 100 (Q4_S24) tensor, laid out as FORMAT.md / llama.cpp expect."""
    s = lambda x: struct.pack("<Q", len(x.encode())) + x.encode()
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, 1)
    head += s("general.architecture") + struct.pack("<I", 8) + s("llama")
    head += s(name) + struct.pack("<I", 2) + struct.pack("<QQ", cols, rows) + struct.pack("<IQ", 100, 0)
    head += b"\0" * (-len(head) % 32)
    with open(path, "wb") as f:
        f.write(head + raw)


class ExportImport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isdir(os.path.join(GGUF_PY, "gguf")):
            raise RuntimeError(f"llama.cpp's gguf-py is missing at {GGUF_PY}: run `npm install` (its postinstall extracts llama.cpp)")
        cls.dir = tempfile.mkdtemp(prefix="gguf-roundtrip-test-")
        cls.bits = tiny_checkpoint(np.random.default_rng(8))
        cls.meta = {"config": CFG}
        ckpt_io.save(cls.bits, os.path.join(cls.dir, "sparse"), "sparse", cls.meta)
        cls.gguf = os.path.join(cls.dir, "tiny-f16.gguf")
        cls.export = run_script("export_gguf.py", "--ckpt-dir", os.path.join(cls.dir, "sparse"), "--stem", "sparse",
                                "--out", cls.gguf, "--name", "tiny-test", "--check-24")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_export_then_import_is_bit_exact(self):
        self.assertEqual(self.export.returncode, 0, self.export.stdout + self.export.stderr)
        self.assertIn("all linear weights are 2:4 sparse", self.export.stdout)
        back = os.path.join(self.dir, "back")
        imp = run_script("gguf_to_ckpt.py", "--gguf", self.gguf, "--stem", "sparse", "--out", back)
        self.assertEqual(imp.returncode, 0, imp.stdout + imp.stderr)
        meta, W = ckpt_io.load(back, "sparse")
        self.assertEqual(meta["config"], CFG)
        self.assertEqual(meta["gguf_name"], "tiny-test")
        self.assertEqual(sorted(W), sorted(self.bits))
        for name, bits in self.bits.items():
            self.assertEqual(W[name].shape, bits.shape, name)
            np.testing.assert_array_equal(W[name].view(np.uint32) >> 16, bits.astype(np.uint32), name)
            if W[name].ndim == 2 and name != "tok.weight":
                self.assertTrue((per_group_count(W[name]) <= 2).all(), name)

    def test_pipeline_reader_matches_export(self):
        # gptq_quant's own GGUF parser (used for the GPTQ files) reads what gguf-py wrote
        self.assertEqual(self.export.returncode, 0, self.export.stdout + self.export.stderr)
        import export_gguf
        table, kv = gq.read_gguf(self.gguf)
        self.assertEqual(kv["llama.block_count"], CFG["n_layers"])
        self.assertEqual(kv["llama.attention.head_count_kv"], CFG["n_kv_heads"])
        for name, bits in self.bits.items():
            info = table[export_gguf.gguf_name(name)]
            self.assertEqual(info["type"], gq.GGML_F32 if bits.ndim == 1 else gq.GGML_F16, name)
            a = gq.tensor_f32(self.gguf, info)
            np.testing.assert_array_equal(a.view(np.uint32), bits.astype(np.uint32) << 16, name)

    def test_check_24_refuses_a_dense_weight(self):
        d = os.path.join(self.dir, "dense")
        ckpt_io.save(tiny_checkpoint(np.random.default_rng(9), dense_linear="layers.1.w3.weight"), d, "dense", self.meta)
        r = run_script("export_gguf.py", "--ckpt-dir", d, "--stem", "dense", "--out", os.path.join(self.dir, "bad.gguf"),
                       "--name", "bad", "--check-24")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("layers.1.w3.weight is not 2:4 sparse", r.stderr)


class Q4S24Keep(unittest.TestCase):
    def test_mask_from_q4_s24_file(self):
        import gguf_to_ckpt  # imports gguf-py
        rng = np.random.default_rng(10)
        rows, cols = 4, 512
        keep = random_keep_24(rng, rows, cols)
        codes = np.where(keep, rng.integers(-8, 8, (rows, cols)), 0).astype(np.int8)
        codes[0, :] = 0  # kept positions whose code is 0: only the stored positions tell the mask
        d16 = (rng.random((rows, cols // 128)) * 0.01 + 1e-3).astype(np.float16)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "t.gguf")
            write_q4_s24_gguf(path, "blk.0.ffn_down.weight", gq.pack_q4_s24(codes, keep, d16), rows, cols)
            masks = gguf_to_ckpt.q4_s24_keep(path)
            self.assertEqual(list(masks), ["layers.0.w2.weight"])
            np.testing.assert_array_equal(masks["layers.0.w2.weight"], keep)
            table, _ = gq.read_gguf(path)
            deq = gq.unpack_q4_s24(gq.tensor_bytes(path, table["blk.0.ffn_down.weight"]), rows, cols)
            np.testing.assert_array_equal(deq, codes * np.repeat(d16.astype(np.float32), 128, axis=1))

    def test_names_invert(self):
        import export_gguf
        import gguf_to_ckpt
        for name in ["tok.weight", "norm.weight"] + [f"layers.3.{m}.weight" for m in export_gguf.LAYER_TENSORS]:
            self.assertEqual(gguf_to_ckpt.ckpt_name(export_gguf.gguf_name(name)), name)


if __name__ == "__main__":
    unittest.main()
