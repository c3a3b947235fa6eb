/** Every user-facing setting, typed, with its default. The VS Code adapter and the CLI both build one of these. */
export type ModelVariant = "sparse" | "dense" | "custom";
export type ComputeDevice = "auto" | "gpu" | "cpu";

export interface CompletionSettings {
    readonly enabled: boolean;
    readonly modelVariant: ModelVariant;
    /** Only read when modelVariant is "custom". Machine-scoped: never taken from a workspace. */
    readonly customModelPath: string;
    readonly device: ComputeDevice;
    readonly maxTokens: number;
    readonly debounceMs: number;
    /** Prompt tokens given to the text around the cursor. */
    readonly contextTokens: number;
}

export const defaultSettings: CompletionSettings = {
    enabled: true,
    modelVariant: "sparse",
    customModelPath: "",
    device: "auto",
    maxTokens: 128,
    debounceMs: 75,
    contextTokens: 1536
};

export const settingLimits = {
    maxTokens: {min: 1, max: 2048},
    debounceMs: {min: 0, max: 2000},
    contextTokens: {min: 128, max: 16384}
} as const;

const variants: readonly ModelVariant[] = ["sparse", "dense", "custom"];
const devices: readonly ComputeDevice[] = ["auto", "gpu", "cpu"];

export interface ParsedSettings {
    readonly settings: CompletionSettings;
    /** One line per value that was ignored, for the log. */
    readonly problems: readonly string[];
}

/** Turns raw, untrusted values (settings.json, CLI flags) into settings, replacing bad values with defaults. */
export function parseSettings(raw: Readonly<Record<string, unknown>>): ParsedSettings {
    const problems: string[] = [];
    const pick = <T>(key: keyof CompletionSettings, isValid: (value: unknown) => value is T): T => {
        const value = raw[key];
        if (value === undefined || value === null)
            return defaultSettings[key] as T;
        if (isValid(value))
            return value;
        problems.push(`setting "${key}" has an invalid value ${JSON.stringify(value)}; using ${JSON.stringify(defaultSettings[key])}`);
        return defaultSettings[key] as T;
    };
    const integerIn = (limits: {min: number, max: number}) => (value: unknown): value is number =>
        typeof value === "number" && Number.isInteger(value) && value >= limits.min && value <= limits.max;
    return {
        settings: {
            enabled: pick("enabled", (v): v is boolean => typeof v === "boolean"),
            modelVariant: pick("modelVariant", (v): v is ModelVariant => variants.includes(v as ModelVariant)),
            customModelPath: pick("customModelPath", (v): v is string => typeof v === "string"),
            device: pick("device", (v): v is ComputeDevice => devices.includes(v as ComputeDevice)),
            maxTokens: pick("maxTokens", integerIn(settingLimits.maxTokens)),
            debounceMs: pick("debounceMs", integerIn(settingLimits.debounceMs)),
            contextTokens: pick("contextTokens", integerIn(settingLimits.contextTokens))
        },
        problems
    };
}
