import * as fs from "node:fs";
import * as vscode from "vscode";
import {CompletionPipeline, type RequestRecord} from "../core/CompletionPipeline.js";
import {EngineClient} from "../core/EngineClient.js";
import {describeError} from "../core/errors.js";
import {projectPaths} from "../core/modelCatalog.js";
import {ModelSession, type ModelStatus} from "../core/ModelSession.js";
import {noticeFor} from "../core/modelNotice.js";
import type {CompletionSettings} from "../core/settings.js";
import {COMPLETABLE_DOCUMENTS, InlineCompletionProvider} from "./InlineCompletionProvider.js";
import {MODEL_SETTINGS, readSettings, SETTINGS_SECTION} from "./readSettings.js";
import {StatusBar} from "./StatusBar.js";
import {registerCommands} from "./commands.js";

let engineToDispose: EngineClient | undefined;

function describeRequest(record: RequestRecord): string {
    const where = `${record.documentKey.split("/").at(-1)}@${record.offset}`;
    const result = record.result;
    if (record.outcome === "failed")
        return `failed ${where}: ${describeError(record.error)}`;
    if (record.outcome === "cancelled" || result == null)
        return `${record.outcome} ${where}`;
    if (result.source === "cache")
        return `cached ${where}: ${result.text.length} chars in ${result.latencyMs.toFixed(1)} ms`;
    const stats = result.stats!;
    return `${record.outcome} ${where}: prompt ${stats.promptTokens} tokens (${stats.evaluatedPromptTokens} evaluated), ` +
        `${stats.generatedTokens} generated, first token ${stats.timeToFirstTokenMs.toFixed(1)} ms, total ${result.latencyMs.toFixed(1)} ms, stop ${result.stopReason}`;
}

/** What activate() returns to other extensions and to the extension-host tests. */
export interface SparseCompleteApi {
    modelStatus(): ModelStatus;
}

export function activate(context: vscode.ExtensionContext): SparseCompleteApi {
    const log = vscode.window.createOutputChannel("Sparse Complete", {log: true});
    context.subscriptions.push(log);
    const root = context.extensionPath;
    let {settings, problems} = readSettings();
    problems.forEach((problem) => log.warn(problem));

    const engine = new EngineClient({
        enginePath: projectPaths(root).engineEntry,
        execPath: process.execPath,
        log: (level, message) => log[level](message)
    });
    engineToDispose = engine;
    const session = new ModelSession(engine, root);
    const statusBar = new StatusBar();
    statusBar.setEnabled(settings.enabled);
    context.subscriptions.push(statusBar, {dispose: () => session.dispose()});

    const pipeline = new CompletionPipeline(engine, () => settings, (record) => {
        const line = describeRequest(record);
        if (record.outcome === "failed")
            log.error(line);
        else
            log.info(line);
    });

    const provider = new InlineCompletionProvider(pipeline, () => session.status.kind, {
        started: () => statusBar.requestStarted(),
        ended: (latencyMs) => statusBar.requestEnded(latencyMs)
    });
    context.subscriptions.push(vscode.languages.registerInlineCompletionItemProvider(COMPLETABLE_DOCUMENTS, provider));

    // One notification per distinct failure; the log has every one.
    let lastNotified: string | undefined;
    const notify = (status: ModelStatus) => {
        const notice = noticeFor(status);
        if (notice == null || notice.message === lastNotified)
            return;
        lastNotified = notice.message;
        const actions = notice.severity === "error" ? ["Switch Model", "Use CPU", "Show Log"]
            : notice.severity === "warning" ? ["Switch Model", "Show Log"] : ["Show Log"];
        const show = {error: vscode.window.showErrorMessage, warning: vscode.window.showWarningMessage, info: vscode.window.showInformationMessage}[notice.severity];
        void show(notice.message, ...actions).then((action) => {
            if (action === "Switch Model")
                void vscode.commands.executeCommand("sparseComplete.switchModel");
            else if (action === "Use CPU")
                void vscode.workspace.getConfiguration(SETTINGS_SECTION).update("device", "cpu", vscode.ConfigurationTarget.Global);
            else if (action === "Show Log")
                log.show();
        });
    };
    context.subscriptions.push(session.onStatus((status) => {
        statusBar.setModel(status);
        if (status.kind === "ready")
            log.info(`model ready: ${status.info.name} (${status.choice.variant}, ${status.info.weightTypes.join("/")}, ${status.info.backend}, context ${status.info.contextSize})`);
        else if (status.kind === "error")
            log.error(`model error: ${status.error.message}`);
        if (status.kind === "ready" || status.kind === "error")
            provider.modelSettled(status.kind === "ready", settings.enabled);
        notify(status);
    }));

    /** Loads the model the settings select, with progress; typing is never blocked (completions wait for "ready"). */
    const applyModel = (current: CompletionSettings, force = false) => vscode.window.withProgress(
        {location: vscode.ProgressLocation.Window, title: "Sparse Complete: loading model"},
        () => session.apply(current, {force})
    );
    void applyModel(settings);

    context.subscriptions.push(vscode.workspace.onDidChangeConfiguration((event) => {
        if (!event.affectsConfiguration(SETTINGS_SECTION))
            return;
        ({settings, problems} = readSettings());
        problems.forEach((problem) => log.warn(problem));
        statusBar.setEnabled(settings.enabled);
        if (MODEL_SETTINGS.some((key) => event.affectsConfiguration(`${SETTINGS_SECTION}.${key}`))) {
            pipeline.cancel();
            pipeline.clearCache();
            lastNotified = undefined;
            void applyModel(settings);
        }
    }));

    registerCommands(context, {
        context, root, log, session, pipeline,
        settings: () => settings,
        restartEngine: async () => {
            pipeline.cancel();
            await applyModel(settings, true);
        },
        modelExists: (file) => fs.existsSync(file)
    });
    context.subscriptions.push({dispose: () => pipeline.cancel()});
    return {modelStatus: () => session.status};
}

export async function deactivate(): Promise<void> {
    await engineToDispose?.dispose();
    engineToDispose = undefined;
}
