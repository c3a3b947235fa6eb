/**
 * `npm run eval -- [--positions N] [--seed N] [--positions-per-file N] [--model NAME|PATH]... [--baseline NAME]
 *  [--device auto|gpu|cpu] [--ppl-tokens N] [--max-tokens N] [--json]`: the code-completion evaluation on held-out packages
 * (docs/model.md, "Evaluation"). Without --model it runs every model with an evalName in models/manifest.json.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import {fileURLToPath} from "node:url";
import {projectPaths} from "../core/modelCatalog.js";
import {fetchHeldOutCode, heldOutPaths} from "../eval/fetchHeldOutCode.js";
import {chooseEvaluationModels} from "../eval/readEvaluationModels.js";
import {renderEvaluationTable} from "../eval/renderEvaluationTable.js";
import {runEvaluation} from "../eval/runEvaluation.js";
import {sampleCompletionPositions} from "../eval/sampleCompletionPositions.js";
import {parseArgs, runCliMain} from "./parseArgs.js";

// Only a completion's first line is scored; 48 tokens cover it (and what post-processing looks at after it) at a
// third of the editor's 128-token multi-line budget.
const DEFAULTS = {positions: 200, seed: 1, positionsPerFile: 4, pplTokens: 512, maxTokens: 48};

function integerFlag(flags: Map<string, string | true>, name: string, fallback: number): number {
    const value = flags.get(name);
    if (value == null)
        return fallback;
    const number = Number(value);
    if (!Number.isInteger(number) || number < 1)
        throw new Error(`--${name} needs a positive integer, got ${String(value)}`);
    return number;
}

async function main(): Promise<number> {
    const {flags, lists} = parseArgs(process.argv.slice(2), ["json"]);
    const json = flags.has("json");
    const device = String(flags.get("device") ?? "auto");
    if (device !== "auto" && device !== "gpu" && device !== "cpu")
        throw new Error("--device must be auto, gpu or cpu");
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
    const log = (message: string) => {
        if (!json)
            console.error(message);
    };
    const models = chooseEvaluationModels(root, lists.get("model") ?? []);
    if (models.length === 0)
        throw new Error("no models to evaluate: models/manifest.json lists none with an evalName, and no --model was given");
    const seed = integerFlag(flags, "seed", DEFAULTS.seed);
    const packages = await fetchHeldOutCode(root, log);
    const positions = sampleCompletionPositions(packages, {
        count: integerFlag(flags, "positions", DEFAULTS.positions), seed,
        positionsPerFile: integerFlag(flags, "positions-per-file", DEFAULTS.positionsPerFile)
    });
    log(`${packages.reduce((n, p) => n + p.files.length, 0)} held-out files in ${packages.length} packages; ${positions.length} positions`);
    const baseline = flags.get("baseline");
    const report = await runEvaluation({
        engineEntry: projectPaths(root).engineEntry, models, packages, positions, seed, device,
        perplexityWindowTokens: integerFlag(flags, "ppl-tokens", DEFAULTS.pplTokens),
        maxTokens: integerFlag(flags, "max-tokens", DEFAULTS.maxTokens),
        ...(typeof baseline === "string" ? {baseline} : {}),
        onProgress: log
    });
    const table = renderEvaluationTable(report);
    const saved = path.join(heldOutPaths(root).cacheDir, "last-report");
    await fs.mkdir(path.dirname(saved), {recursive: true});
    await fs.writeFile(`${saved}.json`, JSON.stringify(report, null, 2) + "\n");
    await fs.writeFile(`${saved}.md`, table + "\n");
    console.log(json ? JSON.stringify(report, null, 2) : table);
    log(`saved ${saved}.json and ${saved}.md (${report.elapsedSeconds.toFixed(0)} s)`);
    return 0;
}

runCliMain(main);
