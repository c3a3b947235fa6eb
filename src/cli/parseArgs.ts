import * as path from "node:path";
import type {CompletionSettings} from "../core/settings.js";

export interface ParsedArgs {
    readonly positional: string[];
    readonly flags: Map<string, string | true>;
    readonly lists: Map<string, string[]>;
    /** The last value of `--name`, or undefined when absent or given as a switch. */
    flag(name: string): string | undefined;
}

/**
 * Splits `--flag value`, `--flag=value` and `--switch` from positional arguments. A flag given several times keeps
 * its last value in `flags` and all of them in `lists`.
 */
export function parseArgs(argv: readonly string[], switches: readonly string[]): ParsedArgs {
    const positional: string[] = [];
    const flags = new Map<string, string | true>();
    const lists = new Map<string, string[]>();
    const set = (name: string, value: string | true) => {
        flags.set(name, value);
        if (value !== true)
            lists.set(name, [...lists.get(name) ?? [], value]);
    };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i]!;
        if (!arg.startsWith("--")) {
            positional.push(arg);
            continue;
        }
        const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
        if (inline != null)
            set(name, inline);
        else if (switches.includes(name) || i + 1 >= argv.length)
            set(name, true);
        else
            set(name, argv[++i]!);
    }
    const flag = (name: string) => {
        const value = flags.get(name);
        return typeof value === "string" ? value : undefined;
    };
    return {positional, flags, lists, flag};
}

/** Progress lines go to stderr, and nowhere when the CLI prints a JSON report. */
export function progressLogger(json: boolean): (message: string) => void {
    return json ? () => undefined : (message) => console.error(message);
}

/** Offset of a 1-based line and column in `text`; throws when the position is outside the text. */
export function offsetOfLineColumn(text: string, line: number, column: number): number {
    let offset = 0;
    for (let current = 1; current < line; current++) {
        const newline = text.indexOf("\n", offset);
        if (newline < 0)
            throw new Error(`line ${line} is past the end of the file (${current} lines)`);
        offset = newline + 1;
    }
    const lineEnd = text.indexOf("\n", offset) < 0 ? text.length : text.indexOf("\n", offset);
    if (column < 1 || offset + column - 1 > lineEnd)
        throw new Error(`column ${column} is outside line ${line} (${lineEnd - offset} characters)`);
    return offset + column - 1;
}

/** Runs a CLI's main function and exits with its code; an error becomes one line on stderr and exit code 1. */
export function runCliMain(main: () => Promise<number>): void {
    main().then((code) => process.exit(code), (error: unknown) => {
        console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
    });
}

/** The model settings a CLI's `--model` argument names: the bundled "sparse" or "dense", or a GGUF file. */
export function modelSettingsFromArgument(argument: string): Pick<CompletionSettings, "modelVariant" | "customModelPath"> {
    return argument === "sparse" || argument === "dense"
        ? {modelVariant: argument, customModelPath: ""}
        : {modelVariant: "custom", customModelPath: path.resolve(argument)};
}
