import {strict as assert} from "node:assert";
import {spawnSync} from "node:child_process";
import * as path from "node:path";
import {repoRoot} from "../support/fixtures.js";

// The Python model pipeline's unit tests (model-pipeline/tests/test_*.py, stdlib unittest): GPTQ to the Q4_S24 /
// Q4_0 grids, SparseGPT 2:4 pruning, checkpoint packs, GGUF export/import. They need numpy, torch and PyYAML
// (llama.cpp's gguf-py imports it); on Debian: apt-get install python3-numpy python3-torch (pulls python3-yaml).
// Not skipped when no interpreter has them: the test fails and names what is missing.
const requiredModules = ["numpy", "torch", "yaml"];
const testsDir = path.join(repoRoot, "model-pipeline", "tests");

type Candidate = {python: string, missing: string[], error?: string};

function probe(python: string): Candidate {
    // Imports each module (a package that is present but broken counts as missing).
    const script = [
        "import importlib, sys",
        "missing = []",
        "for m in sys.argv[1:]:",
        "    try:",
        "        importlib.import_module(m)",
        "    except Exception:",
        "        missing.append(m)",
        "print(','.join(missing))"
    ].join("\n");
    const result = spawnSync(python, ["-c", script, ...requiredModules], {encoding: "utf8", timeout: 60_000});
    if (result.error != null || result.status !== 0)
        return {python, missing: requiredModules, error: result.error?.message ?? result.stderr.trim()};
    const missing = result.stdout.trim();
    return {python, missing: missing === "" ? [] : missing.split(",")};
}

/** SPARSE_COMPLETE_PYTHON if set (and only it), else the first of python3, /usr/bin/python3 that has every module. */
function choosePython(): {python?: string, tried: Candidate[]} {
    const fromEnv = process.env.SPARSE_COMPLETE_PYTHON;
    const candidates = fromEnv != null && fromEnv !== "" ? [fromEnv] : ["python3", "/usr/bin/python3"];
    const tried: Candidate[] = [];
    for (const python of candidates) {
        const candidate = probe(python);
        tried.push(candidate);
        if (candidate.missing.length === 0)
            return {python, tried};
    }
    return {tried};
}

describe("Python model pipeline (model-pipeline/tests, unittest)", function () {
    this.timeout(600_000);

    it("GPTQ, SparseGPT, checkpoint packs and GGUF round trip pass their unit tests", function () {
        const {python, tried} = choosePython();
        if (python == null) {
            const lines = tried.map((c) => `  ${c.python}: ${c.error != null ? `cannot run (${c.error})` : `missing Python module(s) ${c.missing.join(", ")}`}`);
            assert.fail("no Python interpreter with " + requiredModules.join(", ") + " for the model pipeline's tests:\n" + lines.join("\n") +
                "\nInstall them (Debian: apt-get install python3-numpy python3-torch python3-yaml) or set SPARSE_COMPLETE_PYTHON.");
        }
        const started = Date.now();
        const result = spawnSync(python, ["-m", "unittest", "discover", "-s", testsDir, "-p", "test_*.py", "-v"], {
            cwd: repoRoot,
            encoding: "utf8",
            timeout: 580_000,
            env: {...process.env, PYTHONDONTWRITEBYTECODE: "1", PYTHONHASHSEED: "0"}
        });
        const output = (result.stdout ?? "") + (result.stderr ?? "");
        assert.equal(result.error, undefined, `${python} -m unittest could not run: ${result.error?.message}\n${output}`);
        assert.equal(result.status, 0, `model-pipeline unit tests failed (${python}):\n${output}`);
        const ran = /^Ran (\d+) tests? in/m.exec(output);
        assert.ok(ran != null && Number(ran[1]) >= 20, `expected the pipeline's test suite to run (at least 20 tests):\n${output}`);
        console.log(`      (${python}: ${ran[1]} Python tests in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    });
});
