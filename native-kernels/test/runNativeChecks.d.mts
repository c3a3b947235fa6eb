export declare function runStandaloneChecks(seed?: string | number): {variant: string; status: number; output: string}[];
export declare const VARIANT_UNSUPPORTED_STATUS: number;
export declare function runGgmlChecks(seed?: string | number): {variant: string; supported: boolean; status: number; output: string}[] | null;
