export declare function runStandaloneChecks(seed?: string | number): {variant: string; status: number; output: string}[];
export declare function runGgmlCheck(seed?: string | number): {status: number; output: string} | null;
