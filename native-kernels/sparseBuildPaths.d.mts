export declare const nativeKernelsDir: string;
export declare const projectRoot: string;
export declare function getNodeLlamaCppDir(): string;
export declare function getSparseBuildPaths(): {
    stamp: {folderName: string; gpu: string; inputsHash: string; nodeLlamaCppVersion: string};
    releaseDir: string;
    includeDirs: string[];
    libraries: string[];
    cpuVariants: {name: string; library: string}[];
} | null;
