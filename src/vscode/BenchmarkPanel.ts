import * as fs from "node:fs/promises";
import * as path from "node:path";
import * as vscode from "vscode";
import {renderBenchmarkHtml} from "../bench/renderBenchmarkHtml.js";
import {runBenchmark} from "../bench/runBenchmark.js";
import {loadPreviousBenchmarkReport, saveBenchmarkReport} from "../bench/saveBenchmarkReport.js";
import {EngineClient} from "../core/EngineClient.js";
import {describeError, isAbortError} from "../core/errors.js";
import {chooseModel, projectPaths, readBundledModels, type ModelChoice} from "../core/modelCatalog.js";
import type {CompletionSettings} from "../core/settings.js";

/**
 * "Run Benchmark": the bundled sparse and dense models side by side (or the custom model alone), in an engine process
 * of its own so the editor's model stays loaded; a cancellable progress notification; results in a webview panel and
 * saved as JSON and Markdown under the extension's storage.
 */
export async function runBenchmarkCommand(context: vscode.ExtensionContext, settings: CompletionSettings, log: vscode.LogOutputChannel): Promise<void> {
    const root = context.extensionPath;
    const models: ModelChoice[] = [];
    for (const model of await readBundledModels(root))
        models.push(await chooseModel(root, {modelVariant: model.variant, customModelPath: ""}));
    if (settings.modelVariant === "custom")
        models.push(await chooseModel(root, settings));
    if (models.length === 0) {
        void vscode.window.showErrorMessage("Sparse Complete: no model to benchmark (no bundled models and no custom model).");
        return;
    }
    const sourceText = await fs.readFile(path.join(projectPaths(root).samplesDir, "benchmark-source.ts.txt"), "utf8");
    const storage = path.join(context.globalStorageUri.fsPath, "benchmarks");
    const engine = new EngineClient({enginePath: projectPaths(root).engineEntry, execPath: process.execPath, log: (level, message) => log[level](`[benchmark] ${message}`)});
    try {
        const report = await vscode.window.withProgress({location: vscode.ProgressLocation.Notification, title: "Sparse Complete benchmark", cancellable: true},
            async (progress, token) => {
                const controller = new AbortController();
                token.onCancellationRequested(() => controller.abort());
                let reported = 0;
                return runBenchmark({
                    engine, models, device: settings.device, sourceText, signal: controller.signal,
                    onProgress: (fraction, message) => {
                        progress.report({increment: (fraction - reported) * 100, message});
                        reported = fraction;
                    }
                });
            });
        const previous = await loadPreviousBenchmarkReport(storage, report.startedAt);
        const saved = await saveBenchmarkReport(storage, report);
        log.info(`benchmark saved to ${saved.json} and ${saved.markdown}`);
        const panel = vscode.window.createWebviewPanel("sparseComplete.benchmark", "Sparse Complete Benchmark", vscode.ViewColumn.Active, {enableScripts: false});
        panel.webview.html = renderBenchmarkHtml(report, panel.webview.cspSource, previous);
    } catch (error) {
        if (isAbortError(error))
            log.info("benchmark cancelled");
        else {
            log.error(`benchmark failed: ${describeError(error)}`);
            void vscode.window.showErrorMessage(`Sparse Complete benchmark failed: ${describeError(error)}`);
        }
    } finally {
        await engine.dispose();
    }
}
