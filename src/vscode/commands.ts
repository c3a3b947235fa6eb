import * as vscode from "vscode";
import type {CompletionPipeline} from "../core/CompletionPipeline.js";
import {describeError} from "../core/errors.js";
import {inspectModelFile} from "../core/inspectModelFile.js";
import {projectPaths, readBundledModels} from "../core/modelCatalog.js";
import type {ModelSession} from "../core/ModelSession.js";
import type {CompletionSettings, ModelVariant} from "../core/settings.js";
import {SETTINGS_SECTION} from "./readSettings.js";
import * as path from "node:path";
import {runBenchmarkCommand} from "./BenchmarkPanel.js";
import {importModelCommand} from "./importModelCommand.js";

export interface CommandServices {
    readonly context: vscode.ExtensionContext;
    readonly root: string;
    readonly log: vscode.LogOutputChannel;
    readonly session: ModelSession;
    readonly pipeline: CompletionPipeline;
    settings(): CompletionSettings;
    restartEngine(): Promise<void>;
    modelExists(file: string): boolean;
}

function formatSize(bytes: number): string {
    return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

async function switchModel(services: CommandServices): Promise<void> {
    const bundled = await readBundledModels(services.root);
    const current = services.settings().modelVariant;
    type Item = vscode.QuickPickItem & {variant: ModelVariant};
    const items: Item[] = (["sparse", "dense"] as const).map((variant) => {
        const model = bundled.find((m) => m.variant === variant);
        const file = model == null ? undefined : path.join(projectPaths(services.root).modelsDir, model.file);
        const available = file != null && services.modelExists(file);
        return {
            variant,
            label: `${variant === current ? "$(check) " : ""}${variant === "sparse" ? "Sparse (2:4, 4-bit)" : "Dense"}`,
            description: model == null ? "not bundled" : `${formatSize(model.bytes)}${available ? "" : " · missing"}`,
            detail: model?.description
        };
    });
    items.push({variant: "custom", label: `${current === "custom" ? "$(check) " : ""}Custom GGUF file...`, description: services.settings().customModelPath || undefined});
    const picked = await vscode.window.showQuickPick(items, {title: "Sparse Complete: Switch Model", placeHolder: "Model used for completions"});
    if (picked == null)
        return;
    const config = vscode.workspace.getConfiguration(SETTINGS_SECTION);
    if (picked.variant === "custom") {
        const uris = await vscode.window.showOpenDialog({canSelectMany: false, filters: {"GGUF models": ["gguf"]}, title: "Choose a GGUF model"});
        const file = uris?.[0]?.fsPath;
        if (file == null)
            return;
        try {
            const summary = await inspectModelFile(file);
            services.log.info(`custom model ${file}: ${summary.name}, ${summary.architecture}, ${summary.weightTypes.join("/")}, ${formatSize(summary.sizeBytes)}, FIM ${summary.supportsFim}`);
        } catch (error) {
            void vscode.window.showErrorMessage(`Sparse Complete: ${describeError(error)}`);
            return;
        }
        await config.update("customModelPath", file, vscode.ConfigurationTarget.Global);
    }
    // Written to the user's settings: the change handler swaps the model live.
    await config.update("modelVariant", picked.variant, vscode.ConfigurationTarget.Global);
}

async function showMenu(services: CommandServices): Promise<void> {
    const enabled = services.settings().enabled;
    const items: (vscode.QuickPickItem & {command: string})[] = [
        {label: enabled ? "$(circle-slash) Disable Completions" : "$(check) Enable Completions", command: "sparseComplete.toggleEnabled"},
        {label: "$(arrow-swap) Switch Model...", command: "sparseComplete.switchModel"},
        {label: "$(cloud-download) Import Model...", command: "sparseComplete.importModel"},
        {label: "$(dashboard) Run Benchmark (sparse vs dense)", command: "sparseComplete.runBenchmark"},
        {label: "$(output) Show Log", command: "sparseComplete.showLog"},
        {label: "$(debug-restart) Restart Engine", command: "sparseComplete.restartEngine"}
    ];
    const picked = await vscode.window.showQuickPick(items, {title: "Sparse Complete"});
    if (picked != null)
        await vscode.commands.executeCommand(picked.command);
}

export function registerCommands(context: vscode.ExtensionContext, services: CommandServices): void {
    const register = (id: string, run: () => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, run));
    register("sparseComplete.showMenu", () => showMenu(services));
    register("sparseComplete.switchModel", () => switchModel(services));
    register("sparseComplete.importModel", () => importModelCommand(services.root, services.log));
    register("sparseComplete.showLog", () => services.log.show());
    register("sparseComplete.runBenchmark", () => runBenchmarkCommand(services.context, services.settings(), services.log));
    register("sparseComplete.restartEngine", () => services.restartEngine());
    register("sparseComplete.toggleEnabled", async () => {
        const config = vscode.workspace.getConfiguration(SETTINGS_SECTION);
        await config.update("enable", !services.settings().enabled, vscode.ConfigurationTarget.Global);
        if (!services.settings().enabled)
            services.pipeline.cancel();
    });
}
