import * as fs from "node:fs";
import * as path from "node:path";
import type {HeldOutPackage} from "../../src/eval/fetchHeldOutCode.js";
import {paths} from "../support/fixtures.js";

/** The repository's sample sources, standing in for held-out packages (no network in unit tests). */
export function samplePackages(): HeldOutPackage[] {
    const file = (name: string, language: "typescript" | "python") =>
        ({path: `samples/${name}`, language, text: fs.readFileSync(path.join(paths.samplesDir, name), "utf8")});
    return [
        {source: "npm", name: "typescript-samples", version: "0", files: [file("benchmark-source.ts.txt", "typescript"), file("fibonacci.ts", "typescript"), file("sum.ts", "typescript")]},
        {source: "debian", name: "python-samples", version: "0", files: [file("inventory.py", "python")]}
    ];
}
