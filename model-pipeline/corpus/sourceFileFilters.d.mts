// Types of sourceFileFilters.mjs for the TypeScript evaluation harness (src/eval/).
export declare const MAX_FILE: number;
export declare const MIN_FILE: number;
export declare const JS_EXT: RegExp;
export declare const DECL: RegExp;
export interface ReservedPackages {
    readonly npm: Set<string>;
    readonly deb: Set<string>;
    readonly file: string;
}
export declare function readReservedPackages(file: string): ReservedPackages;
export declare function npmLicenseOk(license: unknown): boolean;
export declare function debLicense(copyrightText: string): string;
export declare function debLicenseOk(license: string): boolean;
/** Why a file is not taken ("size", "generated", "long-line", ...), or null when it is. */
export declare function textOk(text: string): string | null;
export declare function walk(dir: string, out?: string[]): string[];
export declare const hashOrder: (s: string) => string;
export declare function moduleKey(rel: string): string;
export declare function rank(rel: string): number;
/** Source files of an unpacked npm package (paths relative to `pkgDir`), one per module, in hash order. */
export declare function npmFiles(pkgDir: string, reservedNpm: ReadonlySet<string>): string[];
export declare function langOf(rel: string): "python" | "typescript" | "javascript";
export declare function debianPythonFiles(dir: string, excludedSegments: ReadonlySet<string>): string[];
