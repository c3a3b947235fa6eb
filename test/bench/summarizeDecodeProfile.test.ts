import {strict as assert} from "node:assert";
import {spawnSync} from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {repoRoot} from "../support/fixtures.js";

// native-kernels/bench/summarize_decode_profile.py turns Nsight Compute's CSV of a few decode tokens into the per-token
// kernel table that docs/benchmarks.md quotes; this feeds it a CSV in ncu's raw-page shape (process output around it,
// a units row, thousands separators, templated and namespaced kernel names).
const script = path.join(repoRoot, "native-kernels", "bench", "summarize_decode_profile.py");

/** One launch: kernel name, duration, grid size, and optionally bytes read from DRAM and moved through the L2. */
type LaunchRow = readonly [string, string, string, ...string[]];

function ncuCsv(unit: string, launches: ReadonlyArray<LaunchRow>, byteUnits?: readonly [string, string]): string {
    const header = ["ID", "Process ID", "Process Name", "Host Name", "Kernel Name", "Context", "Stream", "Block Size",
        "Grid Size", "Device", "CC", "gpu__time_duration.sum", "launch__grid_size",
        ...(byteUnits != null ? ["dram__bytes_read.sum", "lts__t_bytes.sum"] : [])];
    const row = (cells: readonly string[]) => cells.map((cell) => `"${cell}"`).join(",");
    return [
        "==PROF== Connected to process 1 (llama-bench)",
        "| model | size | params | backend | test | t/s |",
        row(header),
        row(["", "", "", "", "", "", "", "", "", "", "", unit, "", ...(byteUnits ?? [])]),
        ...launches.map(([name, time, grid, ...bytes], i) =>
            row([String(i), "1", "llama-bench", "h", name, "1", "7", "(128, 1, 1)", `(${grid}, 1, 1)`, "0", "9.0", time, grid,
                ...(byteUnits != null ? bytes : [])])),
        "==PROF== Disconnected from process 1"
    ].join("\n") + "\n";
}

function summarize(csv: string, tokens: number, msPerToken?: string): {status: number | null, output: string} {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "decode-profile-"));
    try {
        const file = path.join(dir, "ncu.csv");
        fs.writeFileSync(file, csv);
        const result = spawnSync("python3", [script, file, String(tokens), ...(msPerToken != null ? [msPerToken] : [])],
            {encoding: "utf8", timeout: 60_000});
        return {status: result.status, output: (result.stdout ?? "") + (result.stderr ?? "")};
    } finally {
        fs.rmSync(dir, {recursive: true, force: true});
    }
}

// Two tokens of: a norm, a templated mat-vec in an anonymous namespace (both ways of writing it), and the output matmul.
const twoTokens: ReadonlyArray<LaunchRow> = [
    ["void rms_norm_f32<1024, true, false>(const float *, float *, int)", "4,500", "1"],
    ["void (anonymous namespace)::mul_mat_vec_kernel<2, 1, 128, 1, false, false, false>(const unsigned char *)", "12,000", "2,048"],
    ["void mul_mat_vec_q<(ggml_type)14, 1>(const void *)", "250,000", "128,256"],
    ["void rms_norm_f32<1024, true, false>(const float *, float *, int)", "4,700", "1"],
    ["void <unnamed>::mul_mat_vec_kernel<2, 1, 128, 1, 0, 0, 0>(const unsigned char *)", "12,200", "2,048"],
    ["void mul_mat_vec_q<(ggml_type)14, 1>(const void *)", "251,000", "128,256"]
];

describe("summarize_decode_profile.py (Nsight Compute CSV to one decode token's kernels)", function () {
    this.timeout(60_000);

    it("groups launches per token by kernel name, in microseconds, largest first, and lists the last token in order", function () {
        const {status, output} = summarize(ncuCsv("nsecond", twoTokens), 2, "0.3");
        assert.equal(status, 0, output);
        assert.match(output, /^6 kernel launches over 2 tokens: 3\.0 launches and 267\.2 us of kernel time per token$/m);
        assert.match(output, /^llama-bench outside ncu: 300\.0 us per token/m);
        const table = output.split("\n").filter((line) => line.startsWith("| ") && !line.startsWith("| kernel"));
        assert.deepEqual(table.map((line) => line.split("|")[1]!.trim()),
            ["mul_mat_vec_q", "anonymous::mul_mat_vec_kernel", "rms_norm_f32"]);
        assert.equal(table[0], "| mul_mat_vec_q | 1.0 | 250.5 | 93.8% | 250.50 |");
        assert.equal(table[2], "| rms_norm_f32 | 1.0 | 4.6 | 1.7% | 4.60 |");
        const last = output.slice(output.indexOf("The last token's 3 launches in order"));
        assert.match(last, /rms_norm_f32 {2}4\.70 {2}1\n.*mul_mat_vec_kernel {2}12\.20 {2}2,048\n.*mul_mat_vec_q {2}251\.00 {2}128,256/);
    });

    it("reads the durations in the unit ncu's units row gives", function () {
        const inMicroseconds = twoTokens.map(([name, time, grid]) => [name, String(Number(time.replace(/,/g, "")) / 1000), grid] as const);
        const {status, output} = summarize(ncuCsv("usecond", inMicroseconds), 2);
        assert.equal(status, 0, output);
        assert.match(output, /267\.2 us of kernel time per token/);
        assert.doesNotMatch(output, /llama-bench outside ncu/);
    });

    it("with DRAM and L2 byte counts, gives each kernel's DRAM read rate and L2 bytes per DRAM byte", function () {
        // The mat-vec reads 24 MB from DRAM per launch and moves 36 MB through the L2 (in Kbyte: the units row says so).
        const launches: LaunchRow[] = [
            ["void <unnamed>::mul_mat_vec_kernel<2, 1, 128, 1, 0, 0, 0>(const unsigned char *)", "12,000", "2,048", "24,000,000", "36,000"],
            ["void rms_norm_f32<1024, true, false>(const float *, float *, int)", "4,000", "1", "0", "16"],
            ["void <unnamed>::mul_mat_vec_kernel<2, 1, 128, 1, 0, 0, 0>(const unsigned char *)", "12,000", "2,048", "24,000,000", "36,000"],
            ["void rms_norm_f32<1024, true, false>(const float *, float *, int)", "4,000", "1", "0", "16"]
        ];
        const {status, output} = summarize(ncuCsv("nsecond", launches, ["byte", "Kbyte"]), 2);
        assert.equal(status, 0, output);
        assert.match(output, /\| DRAM read GB\/s \| L2 bytes per DRAM byte \|/);
        assert.match(output, /^\| anonymous::mul_mat_vec_kernel \| 1\.0 \| 12\.0 \| 75\.0% \| 12\.00 \| 2000 \| 1\.50 \|$/m);
        assert.match(output, /^\| rms_norm_f32 \| 1\.0 \| 4\.0 \| 25\.0% \| 4\.00 \| 0 \| - \|$/m);
    });

    it("fails with a message when ncu profiled nothing", function () {
        const {status, output} = summarize("==PROF== No kernels were profiled.\n", 8);
        assert.notEqual(status, 0);
        assert.match(output, /no CSV rows/);
    });
});
