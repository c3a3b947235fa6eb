export declare const outDir: string;
export declare function findCCompiler(): string | null;
export declare function compileCProgram(options: {
    name: string;
    sources: string[];
    includeDirs?: string[];
    libraries?: string[];
    flags?: string[];
}): string;
