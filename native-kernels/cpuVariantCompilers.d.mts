export declare const newestCpuVariantFlags: Record<string, string[]>;
export declare function compilersBuildAllCpuVariants(options?: {cc?: string; cxx?: string; arch?: string}): {ok: true} | {ok: false; reason: string};
