/**
 * `npm run eval:combine -- REPORT.json... [--model NAME] [--baseline NAME] [--json]`: exact-match recovery over the
 * distinct positions of several `npm run eval --json` reports (e.g. docs/bench-results/eval-1000-seed*.json), with the
 * paired counts, a sign test and a bootstrap interval (docs/model.md, "Evaluation"). Reports are JSON as `npm run --silent
 * eval -- --json` prints it (or the copy it saves in the held-out cache, last-report.json).
 */
import * as fs from "node:fs/promises";
import type {EvaluationReport} from "../eval/EvaluationReport.js";
import {combineExactMatch} from "../eval/combineEvaluationReports.js";
import {parseArgs, runCliMain} from "./parseArgs.js";

async function main(): Promise<number> {
    const {positional, flags} = parseArgs(process.argv.slice(2), ["json"]);
    if (positional.length === 0)
        throw new Error("name one or more evaluation reports (npm run eval -- --json output)");
    const reports: EvaluationReport[] = [];
    for (const file of positional) {
        reports.push(JSON.parse(await fs.readFile(file, "utf8")) as EvaluationReport);
    }
    const combined = combineExactMatch(reports, String(flags.get("model") ?? "sparse-4bit"),
        String(flags.get("baseline") ?? "dense-8bit"));
    const f = (x: number) => x.toFixed(1);
    console.log(flags.has("json") ? JSON.stringify(combined, null, 2)
        : `${combined.reports} reports, ${combined.distinctPositions} distinct positions: ${combined.model} ` +
          `${combined.exactMatchModel} vs ${combined.baseline} ${combined.exactMatchBaseline} exact matches = ` +
          `${f(combined.recoveryPercent)}% (bootstrap 95%: ${f(combined.bootstrap95[0])}-${f(combined.bootstrap95[1])}%); ` +
          `only ${combined.model} ${combined.onlyModel}, only ${combined.baseline} ${combined.onlyBaseline} ` +
          `(sign test p = ${combined.signTestP.toFixed(2)})`);
    return 0;
}

runCliMain(main);
