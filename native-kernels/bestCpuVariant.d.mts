export declare function bestCpuVariant(build: {cpuVariants: {name: string; library: string}[]}): {name: string; library: string} | null;
