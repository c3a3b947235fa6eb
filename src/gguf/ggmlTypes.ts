/** ggml tensor types this project reads or writes, with their block geometry. */
export enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,
    /** Ours: 2:4 sparse 4-bit weights (native-kernels/FORMAT.md); far from upstream's next ids. */
    Q4_S24 = 100
}

export interface GgmlTypeGeometry {
    readonly name: string;
    /** Dense elements per block. */
    readonly blockSize: number;
    /** Bytes per block. */
    readonly typeSize: number;
}

const geometries = new Map<number, GgmlTypeGeometry>([
    [GgmlType.F32, {name: "F32", blockSize: 1, typeSize: 4}],
    [GgmlType.F16, {name: "F16", blockSize: 1, typeSize: 2}],
    [GgmlType.Q4_0, {name: "Q4_0", blockSize: 32, typeSize: 18}],
    [GgmlType.Q4_1, {name: "Q4_1", blockSize: 32, typeSize: 20}],
    [GgmlType.Q5_0, {name: "Q5_0", blockSize: 32, typeSize: 22}],
    [GgmlType.Q5_1, {name: "Q5_1", blockSize: 32, typeSize: 24}],
    [GgmlType.Q8_0, {name: "Q8_0", blockSize: 32, typeSize: 34}],
    [GgmlType.Q8_1, {name: "Q8_1", blockSize: 32, typeSize: 36}],
    [GgmlType.Q2_K, {name: "Q2_K", blockSize: 256, typeSize: 84}],
    [GgmlType.Q3_K, {name: "Q3_K", blockSize: 256, typeSize: 110}],
    [GgmlType.Q4_K, {name: "Q4_K", blockSize: 256, typeSize: 144}],
    [GgmlType.Q5_K, {name: "Q5_K", blockSize: 256, typeSize: 176}],
    [GgmlType.Q6_K, {name: "Q6_K", blockSize: 256, typeSize: 210}],
    [GgmlType.Q8_K, {name: "Q8_K", blockSize: 256, typeSize: 292}],
    [GgmlType.I8, {name: "I8", blockSize: 1, typeSize: 1}],
    [GgmlType.I16, {name: "I16", blockSize: 1, typeSize: 2}],
    [GgmlType.I32, {name: "I32", blockSize: 1, typeSize: 4}],
    [GgmlType.I64, {name: "I64", blockSize: 1, typeSize: 8}],
    [GgmlType.F64, {name: "F64", blockSize: 1, typeSize: 8}],
    [GgmlType.BF16, {name: "BF16", blockSize: 1, typeSize: 2}],
    [GgmlType.Q4_S24, {name: "Q4_S24", blockSize: 256, typeSize: 100}]
]);

/** Lets a module that defines a new type (the 2:4 sparse type) make it known to readers and writers. */
export function registerGgmlType(id: number, geometry: GgmlTypeGeometry): void {
    const existing = geometries.get(id);
    if (existing != null && (existing.blockSize !== geometry.blockSize || existing.typeSize !== geometry.typeSize))
        throw new Error(`ggml type ${id} is already registered as ${existing.name}`);
    geometries.set(id, geometry);
}

export function getGgmlTypeGeometry(type: number): GgmlTypeGeometry | undefined {
    return geometries.get(type);
}

export function ggmlTypeName(type: number): string {
    return geometries.get(type)?.name ?? `type ${type}`;
}

/** Bytes a tensor of this type and shape occupies; throws if the row length is not a whole number of blocks. */
export function ggmlTensorByteLength(type: number, dims: readonly number[]): number {
    const geometry = geometries.get(type);
    if (geometry == null)
        throw new Error(`unknown ggml type ${type}`);
    const rowLength = dims[0] ?? 1;
    if (rowLength % geometry.blockSize !== 0)
        throw new Error(`row length ${rowLength} is not a multiple of ${geometry.name}'s block size ${geometry.blockSize}`);
    let rows = 1;
    for (let i = 1; i < dims.length; i++)
        rows *= dims[i]!;
    return (rowLength / geometry.blockSize) * geometry.typeSize * rows;
}
