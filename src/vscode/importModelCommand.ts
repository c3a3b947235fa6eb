import * as path from "node:path";
import * as vscode from "vscode";
import {describeError, isAbortError} from "../core/errors.js";
import {runImportInWorker} from "../import/runImportInWorker.js";
import {SETTINGS_SECTION} from "./readSettings.js";

/**
 * "Import Model...": a Hugging Face checkpoint folder (compressed-tensors marlin-24 / pack-quantized /
 * sparse-24-bitmask, or plain BF16) becomes a GGUF with 2:4 weights as Q4_S24; a cancellable progress notification;
 * then an offer to complete with it (the custom model). The import runs in a child process: it is minutes of CPU work
 * for the 8B model, which would otherwise stall the extension host.
 */
export async function importModelCommand(root: string, log: vscode.LogOutputChannel): Promise<void> {
    const folders = await vscode.window.showOpenDialog({
        canSelectFiles: false, canSelectFolders: true, canSelectMany: false,
        title: "Sparse Complete: choose a Hugging Face checkpoint folder (config.json, tokenizer.json, *.safetensors)",
        openLabel: "Import"
    });
    const checkpoint = folders?.[0]?.fsPath;
    if (checkpoint == null)
        return;
    const target = await vscode.window.showSaveDialog({
        defaultUri: vscode.Uri.file(path.join(path.dirname(checkpoint), `${path.basename(checkpoint)}.gguf`)),
        filters: {"GGUF models": ["gguf"]},
        title: "Sparse Complete: save the imported model as"
    });
    const output = target?.fsPath;
    if (output == null)
        return;

    log.info(`importing ${checkpoint} -> ${output}`);
    try {
        const report = await vscode.window.withProgress(
            {location: vscode.ProgressLocation.Notification, title: `Sparse Complete: importing ${path.basename(checkpoint)}`, cancellable: true},
            async (progress, token) => {
                const controller = new AbortController();
                token.onCancellationRequested(() => controller.abort());
                let reported = 0;
                return runImportInWorker({
                    workerPath: path.join(root, "dist", "importWorker.mjs"),
                    options: {checkpoint, output},
                    signal: controller.signal,
                    log: (message) => log.info(`[import] ${message}`),
                    onProgress: (fraction, tensor) => {
                        progress.report({increment: (fraction - reported) * 100, message: tensor});
                        reported = fraction;
                    }
                });
            });
        const sparse = report.tensors.filter((tensor) => tensor.type === "Q4_S24").length;
        log.info(`imported ${report.tensors.length} tensors into ${output} (${sparse} as Q4_S24)`);
        const use = "Use for Completions";
        const action = await vscode.window.showInformationMessage(
            `Sparse Complete: imported ${path.basename(output)} (${sparse} sparse weights). Use it for completions?`, use, "Show Log");
        if (action === use) {
            const config = vscode.workspace.getConfiguration(SETTINGS_SECTION);
            await config.update("customModelPath", output, vscode.ConfigurationTarget.Global);
            // The settings change handler loads the model.
            await config.update("modelVariant", "custom", vscode.ConfigurationTarget.Global);
        } else if (action === "Show Log")
            log.show();
    } catch (error) {
        if (isAbortError(error)) {
            log.info("import cancelled");
            return;
        }
        log.error(`import failed: ${describeError(error)}`);
        void vscode.window.showErrorMessage(`Sparse Complete: import failed: ${describeError(error)}`);
    }
}
