/**
 * The row order llama.cpp's converter gives Hugging Face Llama q_proj / k_proj weights: HF rotates the two halves of
 * each head (dims i and i + headDim/2 form a pair), llama.cpp's rope rotates adjacent dims (2i, 2i + 1), so within each
 * head the rows are interleaved. Output row (head h, i, j) is input row (h, j * headDim/2 + i). The permutation only
 * reorders output rows, so packed and quantized rows move whole, scales with them.
 */
export function llamaRopeRowOrder(rows: number, heads: number): Int32Array {
    if (rows % heads !== 0 || (rows / heads) % 2 !== 0)
        throw new Error(`cannot split ${rows} rows into ${heads} heads of an even size`);
    const headDim = rows / heads;
    const half = headDim / 2;
    const order = new Int32Array(rows);
    for (let h = 0; h < heads; h++)
        for (let i = 0; i < half; i++)
            for (let j = 0; j < 2; j++)
                order[h * headDim + 2 * i + j] = h * headDim + j * half + i;
    return order;
}
