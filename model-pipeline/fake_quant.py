"""Q4_S24 fake quantization for quantization-aware recovery (recover.py --qat).

The forward pass sees exactly the weights that the shipped file will hold when the trained float weights go through
the project's converter (`npm run convert -- ... --sparse24`, round to nearest, native-kernels/FORMAT.md): the float
weight rounded to bf16 (the checkpoint train.save_model writes), then to fp16 (the export's F16 GGUF; exact for bf16
values in fp16's range), one scale per 128 input columns of a row, d = fp16(vmax / -8) where
vmax is the group's first largest-magnitude value, codes round-half-even(clamp(w / d, -8, 7)). The backward pass
passes the gradient straight through to the latent float weights (straight-through estimator). On the GPU the
recovery runs under bf16 autocast, which rounds these weights once more for the matmul, as it does any weight. GPTQ is not run
after such training: it would move the codes away from the ones the model was trained with.
"""
import torch
import torch.nn.functional as F

GROUP = 128


def q4_s24_round_to_nearest(W: torch.Tensor) -> torch.Tensor:
    """(R, C) float weights, already 2:4 -> the dequantized Q4_S24 weights the converter stores (float32)."""
    R, C = W.shape
    g = W.detach().to(torch.bfloat16).float().half().float().reshape(R, C // GROUP, GROUP)
    first = g.abs().argmax(-1, keepdim=True)  # torch returns the first of equal maxima, like the converter
    d = (g.gather(-1, first) / -8.0).half().float()
    inv = torch.where(d != 0, 1.0 / torch.where(d != 0, d, torch.ones_like(d)), torch.zeros_like(d))
    q = torch.round(torch.clamp(g * inv, -8, 7))
    return (q * d).reshape(R, C)


def fake_quant_q4_s24(W: torch.Tensor) -> torch.Tensor:
    """Forward: the stored weights; backward: identity to W."""
    return W + (q4_s24_round_to_nearest(W).to(W.dtype) - W).detach()


def quantize_in_forward(modules):
    """Make each nn.Linear of `modules` multiply with its fake-quantized weight (the parameters stay the latent float
    weights, so saving and the optimizer are unchanged)."""
    for m in modules:
        m.forward = (lambda lin: (lambda x: F.linear(x, fake_quant_q4_s24(lin.weight))))(m)
