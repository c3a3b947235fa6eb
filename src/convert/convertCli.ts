#!/usr/bin/env node
/**
 * npm run convert -- IN.gguf OUT.gguf --sparse24 [--dense q4_0|q8_0] [--dense-out PATH] [--reference PATH]
 *
 * --sparse24        linear weights of OUT become Q4_S24 (2:4 sparse 4-bit); weights already 2:4 keep their
 *                   nonzeros, others are pruned 2:4 by magnitude.
 * --dense T         also write the dense counterpart (linear weights as T, from the same input weights) to
 *                   --dense-out, default OUT with "-dense-T" before ".gguf". Without --sparse24, OUT itself is T.
 * --reference PATH  with --sparse24: also write the dequantized sparse weights as F32 (the exact dense equivalent).
 * --embeddings q8_0 store the token embedding (and output matrix) as Q8_0 instead of copying them (default: keep).
 */
import {pathToFileURL} from "node:url";
import {convertModel, type ConversionReport, type WeightFormat} from "./convertModel.js";

const DENSE_FORMATS = ["q4_0", "q8_0", "f16", "f32"] as const;
type DenseFormat = typeof DENSE_FORMATS[number];

export interface ConvertCliArgs {
    readonly input: string;
    readonly output: string;
    readonly sparse24: boolean;
    readonly dense?: DenseFormat;
    readonly denseOutput?: string;
    readonly reference?: string;
    readonly embeddings?: "keep" | "q8_0";
}

export function parseConvertArgs(argv: readonly string[]): ConvertCliArgs {
    const positional: string[] = [];
    let sparse24 = false;
    let dense: DenseFormat | undefined;
    let denseOutput: string | undefined;
    let reference: string | undefined;
    let embeddings: "keep" | "q8_0" | undefined;
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i]!;
        const value = () => {
            const next = argv[++i];
            if (next == null)
                throw new Error(`${arg} needs a value`);
            return next;
        };
        if (arg === "--sparse24")
            sparse24 = true;
        else if (arg === "--dense") {
            const format = value();
            if (!(DENSE_FORMATS as readonly string[]).includes(format))
                throw new Error(`--dense must be one of ${DENSE_FORMATS.join(", ")}`);
            dense = format as DenseFormat;
        } else if (arg === "--dense-out")
            denseOutput = value();
        else if (arg === "--reference")
            reference = value();
        else if (arg === "--embeddings") {
            const format = value();
            if (format !== "keep" && format !== "q8_0")
                throw new Error("--embeddings must be keep or q8_0");
            embeddings = format;
        }
        else if (arg.startsWith("--"))
            throw new Error(`unknown option ${arg}`);
        else
            positional.push(arg);
    }
    if (positional.length !== 2)
        throw new Error("usage: convert IN.gguf OUT.gguf --sparse24 [--dense q4_0|q8_0] [--dense-out PATH] [--reference PATH] [--embeddings keep|q8_0]");
    if (!sparse24 && dense == null)
        throw new Error("nothing to do: pass --sparse24 and/or --dense FORMAT");
    if (reference != null && !sparse24)
        throw new Error("--reference needs --sparse24");
    return {input: positional[0]!, output: positional[1]!, sparse24,
        ...(dense != null ? {dense} : {}), ...(denseOutput != null ? {denseOutput} : {}), ...(reference != null ? {reference} : {}),
        ...(embeddings != null ? {embeddings} : {})};
}

function defaultDenseOutput(output: string, format: DenseFormat): string {
    return output.endsWith(".gguf") ? `${output.slice(0, -".gguf".length)}-dense-${format}.gguf` : `${output}-dense-${format}`;
}

export async function runConvertCli(argv: readonly string[], log: (message: string) => void = console.log): Promise<ConversionReport[]> {
    const args = parseConvertArgs(argv);
    const reports: ConversionReport[] = [];
    if (args.sparse24) {
        reports.push(...await convertModel({input: args.input, output: args.output, format: "q4_s24", embeddings: args.embeddings,
            ...(args.reference != null ? {dequantizedReference: args.reference} : {}), log}));
        const sparse = reports[0]!.tensors;
        const already = sparse.filter((t) => (t.alreadySparse24 ?? 0) === 1).length;
        log(`${sparse.length} linear weights as Q4_S24: ${already} were already 2:4 (kept exactly up to 4-bit rounding), ${sparse.length - already} pruned by magnitude`);
    }
    if (args.dense != null) {
        const output = args.sparse24 ? args.denseOutput ?? defaultDenseOutput(args.output, args.dense) : args.output;
        reports.push(...await convertModel({input: args.input, output, format: args.dense as WeightFormat, embeddings: args.embeddings, log}));
    }
    return reports;
}

if (process.argv[1] != null && import.meta.url === pathToFileURL(process.argv[1]).href) {
    runConvertCli(process.argv.slice(2)).catch((error: unknown) => {
        console.error(`convert: ${(error as Error).message}`);
        process.exitCode = 1;
    });
}
