/**
 * A plain float64 forward pass of a Hugging Face Llama checkpoint, written from the transformers model's definition
 * (LlamaForCausalLM: RMSNorm, rotate-half rope with Llama 3.1 frequency scaling, grouped-query causal attention, SiLU
 * MLP). It reads weights in Hugging Face's layout, before any conversion, so comparing its logits with llama.cpp's
 * checks the importer's q/k row order, GQA and tensor mapping end to end. (Over a few positions the Llama 3.1 rope
 * factors barely matter: they only scale slow frequencies; the importer's factors are checked against the formula.)
 */
export interface ReferenceLlama {
    readonly embedding: number;
    readonly layers: number;
    readonly heads: number;
    readonly kvHeads: number;
    readonly feedForward: number;
    readonly vocabularySize: number;
    readonly ropeTheta: number;
    readonly rmsEpsilon: number;
    readonly rope: {readonly factor: number, readonly lowFreqFactor: number, readonly highFreqFactor: number, readonly originalContextLength: number};
    /** A weight by Hugging Face name, row-major [out, in] (vectors for norms). */
    weight(name: string): Float32Array;
}

function rmsNorm(x: Float64Array, weight: Float32Array, epsilon: number): Float64Array {
    let sum = 0;
    for (const v of x)
        sum += v * v;
    const scale = 1 / Math.sqrt(sum / x.length + epsilon);
    return x.map((v, i) => v * scale * weight[i]!);
}

function matVec(matrix: Float32Array, x: Float64Array, rows: number): Float64Array {
    const columns = x.length;
    const out = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
        let sum = 0;
        for (let c = 0; c < columns; c++)
            sum += matrix[r * columns + c]! * x[c]!;
        out[r] = sum;
    }
    return out;
}

/** transformers' llama3 rope: inverse frequencies scaled down by `factor` for long wavelengths, blended between. */
function inverseFrequencies(model: ReferenceLlama, headDim: number): Float64Array {
    const {factor, lowFreqFactor, highFreqFactor, originalContextLength} = model.rope;
    const out = new Float64Array(headDim / 2);
    for (let i = 0; i < headDim / 2; i++) {
        const inv = 1 / model.ropeTheta ** ((2 * i) / headDim);
        const wavelength = 2 * Math.PI / inv;
        if (wavelength < originalContextLength / highFreqFactor)
            out[i] = inv;
        else if (wavelength > originalContextLength / lowFreqFactor)
            out[i] = inv / factor;
        else {
            const smooth = (originalContextLength / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
            out[i] = (1 - smooth) * inv / factor + smooth * inv;
        }
    }
    return out;
}

/** Rotate-half rope on each head of `vector` (dims i and i + headDim/2 form a pair). */
function applyRope(vector: Float64Array, heads: number, headDim: number, position: number, inverse: Float64Array): void {
    const half = headDim / 2;
    for (let h = 0; h < heads; h++)
        for (let i = 0; i < half; i++) {
            const angle = position * inverse[i]!;
            const cos = Math.cos(angle), sin = Math.sin(angle);
            const a = vector[h * headDim + i]!, b = vector[h * headDim + half + i]!;
            vector[h * headDim + i] = a * cos - b * sin;
            vector[h * headDim + half + i] = b * cos + a * sin;
        }
}

/** Logits after the last of `tokens`. */
export function referenceLlamaLogits(model: ReferenceLlama, tokens: readonly number[]): Float64Array {
    const {embedding: d, heads, kvHeads} = model;
    const headDim = d / heads;
    const inverse = inverseFrequencies(model, headDim);
    const embed = model.weight("model.embed_tokens.weight");
    let hidden = tokens.map((token) => Float64Array.from(embed.subarray(token * d, (token + 1) * d)));
    for (let layer = 0; layer < model.layers; layer++) {
        const w = (name: string) => model.weight(`model.layers.${layer}.${name}`);
        const keys: Float64Array[] = [], values: Float64Array[] = [];
        const queries: Float64Array[] = [];
        hidden.forEach((h, position) => {
            const x = rmsNorm(h, w("input_layernorm.weight"), model.rmsEpsilon);
            const q = matVec(w("self_attn.q_proj.weight"), x, heads * headDim);
            const k = matVec(w("self_attn.k_proj.weight"), x, kvHeads * headDim);
            applyRope(q, heads, headDim, position, inverse);
            applyRope(k, kvHeads, headDim, position, inverse);
            queries.push(q);
            keys.push(k);
            values.push(matVec(w("self_attn.v_proj.weight"), x, kvHeads * headDim));
        });
        hidden = hidden.map((h, position) => {
            const attended = new Float64Array(heads * headDim);
            for (let head = 0; head < heads; head++) {
                const kv = Math.floor(head / (heads / kvHeads));
                const scores = keys.slice(0, position + 1).map((k) => {
                    let dot = 0;
                    for (let i = 0; i < headDim; i++)
                        dot += queries[position]![head * headDim + i]! * k[kv * headDim + i]!;
                    return dot / Math.sqrt(headDim);
                });
                const max = Math.max(...scores);
                const weights = scores.map((s) => Math.exp(s - max));
                const total = weights.reduce((a, b) => a + b, 0);
                weights.forEach((weight, j) => {
                    for (let i = 0; i < headDim; i++)
                        attended[head * headDim + i]! += (weight / total) * values[j]![kv * headDim + i]!;
                });
            }
            const projected = matVec(w("self_attn.o_proj.weight"), attended, d);
            const afterAttention = h.map((v, i) => v + projected[i]!);
            const x = rmsNorm(afterAttention, w("post_attention_layernorm.weight"), model.rmsEpsilon);
            const gate = matVec(w("mlp.gate_proj.weight"), x, model.feedForward);
            const up = matVec(w("mlp.up_proj.weight"), x, model.feedForward);
            const activated = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
            const down = matVec(w("mlp.down_proj.weight"), activated, d);
            return afterAttention.map((v, i) => v + down[i]!);
        });
    }
    const final = rmsNorm(hidden.at(-1)!, model.weight("model.norm.weight"), model.rmsEpsilon);
    return matVec(model.weight("lm_head.weight"), final, model.vocabularySize);
}
