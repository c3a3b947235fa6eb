import {strict as assert} from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {spawnSync} from "node:child_process";
import {compilersBuildAllCpuVariants, newestCpuVariantFlags} from "../../native-kernels/cpuVariantCompilers.mjs";

// build.mjs asks this before a portable CPU build: a compiler without the newest variant's flags (gcc < 11 has no
// -mavxvnni or -mamx-*) would fail it halfway, so the build falls back to this machine's CPU.
describe("compilers for ggml's portable CPU build (native-kernels/cpuVariantCompilers.mjs)", function () {
    this.timeout(60_000);
    let dir: string;

    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "cpu-variant-compilers-"));
    });
    after(() => fs.rmSync(dir, {recursive: true, force: true}));

    /** A compiler that runs the real one, except that it rejects one flag, like an older gcc. */
    function compilerRejecting(name: string, real: string, flag: string): string {
        const file = path.join(dir, name);
        fs.writeFileSync(file, `#!/bin/sh\nfor a in "$@"; do [ "$a" = "${flag}" ] && { echo "${name}: error: unrecognized command-line option '${flag}'" >&2; exit 1; }; done\nexec ${real} "$@"\n`);
        fs.chmodSync(file, 0o755);
        // A script executed right after it was written can fail with ETXTBSY while a child process forked meanwhile
        // still holds the write descriptor (seen once in CI): wait until it runs.
        for (let attempt = 0; attempt < 200; attempt++) {
            if ((spawnSync(file, ["--version"], {stdio: "ignore"}).error as NodeJS.ErrnoException | undefined)?.code !== "ETXTBSY")
                break;
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        }
        return file;
    }

    it("this machine's compilers build every x86 variant (the build the CI and the .vsix use)", function () {
        if (process.arch !== "x64")
            this.skip();
        assert.deepEqual(compilersBuildAllCpuVariants(), {ok: true});
    });

    it("a C compiler without -mamx-tile is reported, naming the compiler and its error", function () {
        if (process.arch !== "x64")
            this.skip();
        const cc = compilerRejecting("old-cc", "cc", "-mamx-tile");
        const result = compilersBuildAllCpuVariants({cc, arch: "x64"});
        assert.equal(result.ok, false);
        assert.ok(!result.ok && result.reason.includes(cc) && result.reason.includes("unrecognized command-line option '-mamx-tile'"),
            JSON.stringify(result));
    });

    it("a C++ compiler without -mavxvnni is reported too", function () {
        if (process.arch !== "x64")
            this.skip();
        const cxx = compilerRejecting("old-cxx", "c++", "-mavxvnni");
        const result = compilersBuildAllCpuVariants({cxx, arch: "x64"});
        assert.ok(!result.ok && result.reason.includes(cxx), JSON.stringify(result));
    });

    it("nothing to check where ggml has no variant list, or no compiler to ask (the build reports that itself)", () => {
        assert.equal(newestCpuVariantFlags["ppc64"], undefined);
        assert.deepEqual(compilersBuildAllCpuVariants({arch: "ppc64"}), {ok: true});
        const none = path.join(dir, "no-such-compiler");
        assert.deepEqual(compilersBuildAllCpuVariants({cc: none, cxx: none, arch: "x64"}), {ok: true});
    });
});
