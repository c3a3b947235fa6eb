import * as fs from "node:fs/promises";
import * as path from "node:path";
import type {BenchmarkReport} from "./BenchmarkReport.js";
import {renderBenchmarkMarkdown} from "./renderBenchmarkMarkdown.js";

/** Saves a run as JSON and Markdown named by its start time, so later runs can be compared with it. */
export async function saveBenchmarkReport(dir: string, report: BenchmarkReport): Promise<{json: string, markdown: string}> {
    await fs.mkdir(dir, {recursive: true});
    const stem = path.join(dir, `benchmark-${report.startedAt.replace(/[:.]/g, "-")}`);
    await fs.writeFile(`${stem}.json`, JSON.stringify(report, null, 2));
    await fs.writeFile(`${stem}.md`, renderBenchmarkMarkdown(report));
    return {json: `${stem}.json`, markdown: `${stem}.md`};
}

/** The newest saved run before `report`, if any. */
export async function loadPreviousBenchmarkReport(dir: string, before?: string): Promise<BenchmarkReport | undefined> {
    let files: string[];
    try {
        files = (await fs.readdir(dir)).filter((file) => /^benchmark-.*\.json$/.test(file)).sort();
    } catch {
        return undefined;
    }
    for (const file of files.reverse()) {
        try {
            const report = JSON.parse(await fs.readFile(path.join(dir, file), "utf8")) as BenchmarkReport;
            if (report.version === 1 && (before == null || report.startedAt < before))
                return report;
        } catch {
            // A damaged file is skipped; the next older one may do.
        }
    }
    return undefined;
}
