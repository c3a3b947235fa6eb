/** How a compressed-tensors checkpoint stores its Linear weights, as its config.json declares it. */
export interface CompressionScheme {
    /** "marlin-24", "pack-quantized", or undefined when the weights are not quantized. */
    readonly quantizationFormat?: string;
    /** "sparse-24-bitmask", "dense", or undefined without a sparsity config. */
    readonly sparsityFormat?: string;
    /** e.g. "2:4". */
    readonly sparsityStructure?: string;
    /** Modules that keep dense weights (e.g. lm_head), as names or "re:" patterns. */
    readonly ignore: readonly string[];
    /** compressed-tensors version that wrote the checkpoint, when the config says. */
    readonly version?: string;
}

export class UnsupportedCheckpointError extends Error {
    public constructor(message: string) {
        super(message);
        this.name = "UnsupportedCheckpointError";
    }
}

const QUANTIZATION_FORMATS = new Set(["marlin-24", "pack-quantized"]);
const SPARSITY_FORMATS = new Set(["dense", "sparse-24-bitmask"]);

type Json = Record<string, unknown>;

/** Why one config group's weight arguments cannot be imported exactly, or undefined when they can. */
function unsupportedWeights(weights: Json): string | undefined {
    const type = weights.type ?? "int";
    const bits = weights.num_bits ?? 8;
    if (type === "float")
        return `${bits === 8 ? "FP8" : `${String(bits)}-bit float`} weights (type "float", num_bits ${String(bits)})`;
    if (type !== "int")
        return `weights of type ${JSON.stringify(type)}`;
    if (bits !== 4)
        return `${String(bits)}-bit integer weights (only 4-bit is supported)`;
    if (weights.symmetric === false)
        return "asymmetric quantization with zero points (symmetric: false)";
    if (weights.actorder != null && weights.actorder !== false)
        return `activation reordering (actorder: ${JSON.stringify(weights.actorder)}, a g_idx column order)`;
    const strategy = weights.strategy ?? "tensor";
    if (strategy !== "group" && strategy !== "channel")
        return `the ${JSON.stringify(strategy)} quantization strategy (only "group" and "channel")`;
    if (strategy === "group" && (typeof weights.group_size !== "number" || weights.group_size % 32 !== 0))
        return `group size ${JSON.stringify(weights.group_size)} (a multiple of 32 is needed; Q4_S24 needs 128 or a multiple)`;
    return undefined;
}

/** Reads and checks the quantization and sparsity configs; throws UnsupportedCheckpointError naming what is not supported. */
export function readCompressionScheme(config: Json): CompressionScheme {
    const quantization = (config.quantization_config ?? config.compression_config) as Json | undefined;
    const sparsity = (quantization?.sparsity_config ?? config.sparsity_config) as Json | undefined;
    let quantizationFormat: string | undefined;
    const ignore: string[] = [];
    let version: string | undefined;
    if (quantization != null) {
        const method = quantization.quant_method;
        if (method != null && method !== "compressed-tensors" && method !== "sparseml")
            throw new UnsupportedCheckpointError(`quantization method ${JSON.stringify(method)} is not supported (only compressed-tensors checkpoints)`);
        if (typeof quantization.version === "string")
            version = quantization.version;
        const groups = Object.entries((quantization.config_groups ?? {}) as Record<string, Json>);
        for (const [groupName, group] of groups) {
            if (group.input_activations != null || group.output_activations != null)
                throw new UnsupportedCheckpointError(`activation quantization (config group ${groupName} quantizes ${group.input_activations != null ? "input" : "output"} activations) is not supported; only weight-only W4A16 checkpoints are`);
            if (group.weights == null)
                continue;
            const problem = unsupportedWeights(group.weights as Json);
            if (problem != null)
                throw new UnsupportedCheckpointError(`${problem} is not supported (config group ${groupName}); supported: symmetric int4 W4A16, group or channel scales`);
            const format = (group.format ?? quantization.format) as string | undefined;
            if (format == null || !QUANTIZATION_FORMATS.has(format))
                throw new UnsupportedCheckpointError(`the compressed-tensors format ${JSON.stringify(format)} is not supported (config group ${groupName}); supported: marlin-24, pack-quantized`);
            if (quantizationFormat != null && quantizationFormat !== format)
                throw new UnsupportedCheckpointError(`config groups use different formats (${quantizationFormat}, ${format}); mixed formats are not supported`);
            quantizationFormat = format;
        }
        if (quantization.kv_cache_scheme != null)
            throw new UnsupportedCheckpointError("KV cache quantization (kv_cache_scheme) is not supported");
        const transforms = quantization.transform_config as Json | undefined;
        if (transforms != null && Object.keys((transforms.config_groups ?? transforms) as Json).length > 0)
            throw new UnsupportedCheckpointError("transforms (transform_config, e.g. Hadamard rotations) are not supported");
        if (Array.isArray(quantization.ignore))
            ignore.push(...quantization.ignore as string[]);
    }
    let sparsityFormat: string | undefined;
    let sparsityStructure: string | undefined;
    if (sparsity != null) {
        sparsityFormat = sparsity.format as string | undefined;
        sparsityStructure = sparsity.sparsity_structure as string | undefined;
        if (sparsityFormat != null && !SPARSITY_FORMATS.has(sparsityFormat))
            throw new UnsupportedCheckpointError(`the sparsity format ${JSON.stringify(sparsityFormat)} is not supported; supported: sparse-24-bitmask, dense`);
    }
    return {
        ...(quantizationFormat != null ? {quantizationFormat} : {}),
        ...(sparsityFormat != null ? {sparsityFormat} : {}),
        ...(sparsityStructure != null ? {sparsityStructure} : {}),
        ignore,
        ...(version != null ? {version} : {})
    };
}

/** Whether a compressed-tensors version string is older than major.minor. */
export function isVersionBefore(version: string, major: number, minor: number): boolean {
    const [a = 0, b = 0] = version.split(/[.+-]/).map((part) => Number.parseInt(part, 10));
    return a < major || (a === major && b < minor);
}
