import {strict as assert} from "node:assert";
import {spawnSync} from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {repoRoot} from "../support/fixtures.js";

// native-kernels/bench/summarize_prefill_timeline.py turns the kernel tracer's CSV of a few llama-bench prompts into
// the per-prompt kernel table that docs/benchmarks.md quotes; this feeds it a CSV in kernel_timeline.cpp's shape with
// llama-bench's set-up kernels, a prompt cut in two by a host pause, and the measured prompts.
const script = path.join(repoRoot, "native-kernels", "bench", "summarize_prefill_timeline.py");

/** One kernel: start and end in us from the trace's start, name as CUPTI gives it, grid size (default 120). */
type Kernel = readonly [number, number, string, number?];

const gemm = "sm90_xmma_gemm_f16f16_f16f16_f16_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas";
const norm = "void rms_norm_f32<1024, true, false>(float const*, float*, int, long)";
const convert = "void convert_unary_cont_vec4<float, __half>(void const*, __half*, long)";

function timelineCsv(kernels: ReadonlyArray<Kernel>): string {
    const base = 1_796_072_415_395_441_981n; // CUPTI's nanosecond clock, beyond a double's exact integers
    const ns = (us: number) => (base + BigInt(Math.round(us * 1000))).toString();
    return ["start_ns,end_ns,stream,graph,grid,block,cluster,name",
        ...kernels.map(([start, end, name, grid]) => `${ns(start)},${ns(end)},14,0,${grid ?? 120},256,0,"${name}"`)].join("\n") + "\n";
}

/** A prompt from `at` us: a norm (10 us), a conversion (5 us), two matmuls of two shapes (100 and 60 us), 1 us apart. */
function prompt(at: number): Kernel[] {
    return [[at, at + 10, norm], [at + 11, at + 16, convert], [at + 17, at + 117, gemm, 112], [at + 118, at + 178, gemm, 120]];
}

function summarize(csv: string, ...args: string[]): {status: number | null, output: string} {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prefill-timeline-"));
    try {
        const file = path.join(dir, "timeline.csv");
        fs.writeFileSync(file, csv);
        const result = spawnSync("python3", [script, file, ...args], {encoding: "utf8", timeout: 60_000});
        return {status: result.status, output: (result.stdout ?? "") + (result.stderr ?? "")};
    } finally {
        fs.rmSync(dir, {recursive: true, force: true});
    }
}

describe("summarize_prefill_timeline.py (kernel tracer CSV to a prompt's kernels)", function () {
    this.timeout(60_000);

    const kernels: Kernel[] = [
        [0, 3, norm], [5_000, 5_003, norm], [10_000, 10_004, convert], // set-up: single kernels, repeated, far apart
        ...prompt(20_000).slice(0, 2), ...prompt(23_000).slice(2), // a prompt cut by a 3 ms host pause
        ...prompt(40_000), ...prompt(50_000),
        ...prompt(60_000), ...prompt(60_200) // two prompts merged by a short pause: the longest run, seen once
    ];

    it("keeps the longest run seen twice (the measured prompts), not the repeated set-up kernels or a cut prompt", function () {
        const {status, output} = summarize(timelineCsv(kernels), "--prompt-us", "200");
        assert.equal(status, 0, output);
        assert.match(output, /: 8 runs split at idle gaps > 2000 us; 2 prompts of 4 kernels kept$/m);
        assert.match(output, /^runs \(kernels, us from first start to last end\): 1 \/ 3, 1 \/ 3, 1 \/ 4, 2 \/ 16, 2 \/ 161, 4 \/ 178, 4 \/ 178, 8 \/ 378$/m);
        assert.doesNotMatch(output, /warning/);
        assert.match(output, /^prompt wall time on the GPU \(first kernel start to last kernel end\): median 178\.0 us; kernels' summed durations 175\.0 us \(98\.3% of it\)$/m);
        assert.match(output, /^per prompt without the tracer: 200\.0 us$/m);
        const table = output.split("\n").filter((line) => line.startsWith("| `"));
        assert.deepEqual(table, [
            `| \`${gemm.slice(0, 90)}\` | 2 | 160.0 | 80.0 | 91.4% |`,
            "| `rms_norm_f32<1024,true,false>` | 1 | 10.0 | 10.0 | 5.7% |",
            "| `convert_unary_cont_vec4<float,__half>` | 1 | 5.0 | 5.0 | 2.9% |"
        ]);
    });

    it("with --by-grid, one row per kernel and grid size (a library kernel's matrix shapes apart)", function () {
        const {status, output} = summarize(timelineCsv(kernels), "--by-grid");
        assert.equal(status, 0, output);
        const table = output.split("\n").filter((line) => line.startsWith("| `"));
        assert.deepEqual(table.slice(0, 2), [
            `| \`${gemm.slice(0, 90)}\` | 112 | 1 | 100.0 | 100.0 | 57.1% |`,
            `| \`${gemm.slice(0, 90)}\` | 120 | 1 | 60.0 | 60.0 | 34.3% |`
        ]);
    });

    it("warns when the runs it keeps are far shorter than the longest (prompts that did not repeat)", function () {
        const {status, output} = summarize(timelineCsv([[0, 3, norm], [5_000, 5_003, norm], ...prompt(20_000)]));
        assert.equal(status, 0, output);
        assert.match(output, /2 prompts of 1 kernels kept$/m);
        assert.match(output, /^warning: the kept runs have 1 kernels, the longest run 4/m);
    });

    it("splits at the gap it is given", function () {
        const {status, output} = summarize(timelineCsv(kernels), "--gap-us", "10000");
        assert.equal(status, 0, output);
        assert.match(output, /: 2 runs split at idle gaps > 10000 us; 1 prompts of 16 kernels kept$/m);
    });

    it("fails with a message on a trace without kernels", function () {
        const {status, output} = summarize(timelineCsv([]));
        assert.notEqual(status, 0);
        assert.match(output, /no kernels/);
    });
});
