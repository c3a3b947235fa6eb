/** GGUF metadata value types, as numbered by the GGUF specification. */
export enum GgufValueType {
    UINT8 = 0,
    INT8 = 1,
    UINT16 = 2,
    INT16 = 3,
    UINT32 = 4,
    INT32 = 5,
    FLOAT32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    UINT64 = 10,
    INT64 = 11,
    FLOAT64 = 12
}

export type GgufScalar = number | bigint | boolean | string;

/** A metadata value that remembers its wire type, so files round-trip exactly. */
export type GgufValue =
    | {readonly type: Exclude<GgufValueType, GgufValueType.ARRAY>, readonly value: GgufScalar}
    | {readonly type: GgufValueType.ARRAY, readonly elementType: GgufValueType, readonly value: readonly GgufScalar[]};

export const gguf = {
    u32: (value: number): GgufValue => ({type: GgufValueType.UINT32, value}),
    i32: (value: number): GgufValue => ({type: GgufValueType.INT32, value}),
    f32: (value: number): GgufValue => ({type: GgufValueType.FLOAT32, value}),
    u64: (value: number | bigint): GgufValue => ({type: GgufValueType.UINT64, value: BigInt(value)}),
    bool: (value: boolean): GgufValue => ({type: GgufValueType.BOOL, value}),
    str: (value: string): GgufValue => ({type: GgufValueType.STRING, value}),
    array: (elementType: GgufValueType, value: readonly GgufScalar[]): GgufValue => ({type: GgufValueType.ARRAY, elementType, value})
} as const;

export function ggufValueAsNumber(value: GgufValue | undefined): number | undefined {
    if (value == null || value.type === GgufValueType.ARRAY)
        return undefined;
    return typeof value.value === "bigint" || typeof value.value === "number" ? Number(value.value) : undefined;
}

export function ggufValueAsString(value: GgufValue | undefined): string | undefined {
    return value != null && value.type === GgufValueType.STRING ? value.value as string : undefined;
}
