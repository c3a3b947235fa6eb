import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {collectSourceFiles, readPinnedPackages} from "../../src/eval/fetchHeldOutCode.js";
import {sampleCompletionPositions} from "../../src/eval/sampleCompletionPositions.js";
import {samplePackages} from "./samplePackages.js";

describe("held-out sample", () => {
    it("masks the rest of the line: document + expected give back the file, and the cursor sits where the line and column say", () => {
        const positions = sampleCompletionPositions(samplePackages(), {count: 20, seed: 5, positionsPerFile: 6});
        assert.equal(positions.length, 20);
        for (const position of positions) {
            const {text} = position.file;
            const lineEnd = text.indexOf("\n", position.offset) < 0 ? text.length : text.indexOf("\n", position.offset);
            assert.equal(position.documentText.slice(0, position.offset) + text.slice(position.offset, lineEnd) + position.documentText.slice(position.offset), text);
            assert.equal(text.slice(position.offset, lineEnd).trimEnd(), position.expected);
            assert.match(position.expected, /[A-Za-z0-9]/);
            const line = text.split("\n")[position.line - 1]!;
            assert.equal(line.slice(position.column - 1).trimEnd(), position.expected);
            if (position.kind === "line-start")
                assert.equal(line.slice(0, position.column - 1).trim(), "");
            else
                assert.match(line.slice(0, position.column - 1), /[^A-Za-z0-9_$]$/);
        }
        assert.ok(positions.some((p) => p.kind === "mid-line") && positions.some((p) => p.kind === "line-start"));
        assert.ok(positions.some((p) => p.file.language === "python") && positions.some((p) => p.file.language === "typescript"));
    });

    it("is deterministic for a seed, differs across seeds, and keeps each file's positions in file order", () => {
        const key = (seed: number) => sampleCompletionPositions(samplePackages(), {count: 16, seed}).map((p) => `${p.file.path}:${p.line}:${p.column}`);
        assert.deepEqual(key(11), key(11));
        assert.notDeepEqual(key(11), key(12));
        const positions = sampleCompletionPositions(samplePackages(), {count: 16, seed: 11, positionsPerFile: 4});
        for (let i = 1; i < positions.length; i++)
            if (positions[i]!.file === positions[i - 1]!.file)
                assert.ok(positions[i]!.offset > positions[i - 1]!.offset);
    });

    it("accepts only reserved packages in the pinned list", () => {
        const reserved = {npm: new Set(["rxjs"]), deb: new Set(["python3-click"])};
        assert.deepEqual(readPinnedPackages("# pinned\nnpm:rxjs@7.8.2\ndebian:python3-click=8.1.3-2\n", reserved), [
            {source: "npm", name: "rxjs", version: "7.8.2"}, {source: "debian", name: "python3-click", version: "8.1.3-2"}]);
        assert.throws(() => readPinnedPackages("npm:lodash@4.17.21", reserved), /not in eval-reserved/);
        assert.throws(() => readPinnedPackages("npm:rxjs", reserved), /cannot read/);
    });

    it("selects an npm package's files with the corpus rules: no bundles, generated files, declarations or duplicates", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "held-out-"));
        try {
            const write = (relative: string, text: string) => {
                fs.mkdirSync(path.dirname(path.join(dir, relative)), {recursive: true});
                fs.writeFileSync(path.join(dir, relative), text);
            };
            const code = (name: string) => Array.from({length: 12}, (_, i) => `export function ${name}${i}(value: number): number {\n    return value * ${i};\n}\n`).join("\n");
            write("package/package.json", "{\"name\": \"demo\", \"license\": \"MIT\"}");
            write("package/src/map.ts", code("map"));
            write("package/src/copy.ts", code("map"));
            write("package/src/generated.ts", "// This file was generated. Do not edit.\n" + code("gen"));
            write("package/dist/demo.min.js", code("min"));
            write("package/types/index.d.ts", code("decl"));
            const files = collectSourceFiles({source: "npm", name: "demo", version: "1.0.0"}, dir, new Set());
            assert.equal(files.length, 1);
            assert.match(files[0]!.path, /^npm:demo@1\.0\.0\/src\/(map|copy)\.ts$/);
            assert.equal(files[0]!.language, "typescript");
        } finally {
            fs.rmSync(dir, {recursive: true, force: true});
        }
    });
});
