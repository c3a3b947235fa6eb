const scratch = new DataView(new ArrayBuffer(4));

/** IEEE binary16 bits of a number, rounded to nearest even (inf/NaN kept). */
export function float32ToFloat16Bits(value: number): number {
    scratch.setFloat32(0, value);
    const x = scratch.getUint32(0);
    const sign = (x >>> 16) & 0x8000;
    const exponent = (x >>> 23) & 0xff;
    let mantissa = x & 0x7fffff;
    if (exponent === 0xff)
        return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
    const halfExponent = exponent - 127 + 15;
    if (halfExponent >= 0x1f)
        return sign | 0x7c00;
    if (halfExponent <= 0) {
        if (halfExponent < -10)
            return sign;
        mantissa |= 0x800000;
        const shift = 14 - halfExponent;
        const halfway = 1 << (shift - 1);
        const rounded = mantissa >>> shift;
        const rest = mantissa & ((1 << shift) - 1);
        return sign | (rounded + (rest > halfway || (rest === halfway && (rounded & 1) !== 0) ? 1 : 0));
    }
    const rest = mantissa & 0x1fff;
    let half = sign | (halfExponent << 10) | (mantissa >>> 13);
    if (rest > 0x1000 || (rest === 0x1000 && (half & 1) !== 0))
        half += 1; // may carry into the exponent, which is the correct rounding
    return half;
}

export function float16BitsToFloat32(bits: number): number {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >>> 10) & 0x1f;
    const mantissa = bits & 0x3ff;
    if (exponent === 0)
        return sign * mantissa * 2 ** -24;
    if (exponent === 0x1f)
        return mantissa !== 0 ? NaN : sign * Infinity;
    return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Packs floats into little-endian F16 bytes. */
export function encodeFloat16(values: ArrayLike<number>): Uint8Array {
    const out = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++)
        out[i] = float32ToFloat16Bits(values[i]!);
    return new Uint8Array(out.buffer);
}
