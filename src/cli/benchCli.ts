/**
 * `npm run bench -- [--model sparse|dense|PATH]... [--device auto|gpu|cpu] [--repetitions N] [--out DIR] [--json]`:
 * the command-palette benchmark, headless. Without --model it runs the bundled sparse and dense models side by side.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import {fileURLToPath} from "node:url";
import {runBenchmark} from "../bench/runBenchmark.js";
import {renderBenchmarkMarkdown} from "../bench/renderBenchmarkMarkdown.js";
import {saveBenchmarkReport} from "../bench/saveBenchmarkReport.js";
import {EngineClient} from "../core/EngineClient.js";
import {modelSettingsFromArgument, parseArgs, runCliMain} from "./parseArgs.js";
import {chooseModel, projectPaths, type ModelChoice} from "../core/modelCatalog.js";
import {parseSettings} from "../core/settings.js";

async function main(): Promise<number> {
    const {flags, lists, flag} = parseArgs(process.argv.slice(2), ["json"]);
    const modelArgs = lists.get("model") ?? [];
    const json = flags.has("json");
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
    const {settings} = parseSettings({device: flag("device")});
    const models: ModelChoice[] = [];
    for (const model of modelArgs.length > 0 ? modelArgs : ["sparse", "dense"])
        models.push(await chooseModel(root, modelSettingsFromArgument(model)));
    const sourceText = await fs.readFile(path.join(projectPaths(root).samplesDir, "benchmark-source.ts.txt"), "utf8");
    const engine = new EngineClient({enginePath: projectPaths(root).engineEntry, log: (level, message) => {
        if (level === "error")
            console.error(message);
    }});
    try {
        const report = await runBenchmark({
            engine, models, device: settings.device, sourceText,
            repetitions: flag("repetitions") != null ? Number(flag("repetitions")) : undefined,
            onProgress: (fraction, message) => {
                if (!json)
                    console.error(`[${Math.round(fraction * 100)}%] ${message}`);
            }
        });
        const saved = await saveBenchmarkReport(flag("out") ?? path.join(root, ".cache", "bench"), report);
        console.log(json ? JSON.stringify(report, null, 2) : renderBenchmarkMarkdown(report));
        if (!json)
            console.error(`saved ${saved.json} and ${saved.markdown}`);
        return 0;
    } finally {
        await engine.dispose();
    }
}

runCliMain(main);
