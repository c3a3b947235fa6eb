import * as assert from "node:assert/strict";
import * as vscode from "vscode";
import type {SparseCompleteApi} from "../../../src/vscode/extension.js";

const EXTENSION_ID = "sparse-complete.sparse-complete";

async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const value = await probe();
        if (value != null)
            return value;
        if (Date.now() > deadline)
            throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
    }
}

/** The same behaviours as the code-server suite, through VS Code's own API in the extension host. */
export function registerExtensionSuite(): void {
    describe("Sparse Complete in VS Code", () => {
        before(async () => {
            await vscode.workspace.getConfiguration("sparseComplete").update("device", "cpu", vscode.ConfigurationTarget.Global);
            await vscode.workspace.getConfiguration("sparseComplete").update("modelVariant", "sparse", vscode.ConfigurationTarget.Global);
        });

        it("activates and registers its commands", async () => {
            const extension = vscode.extensions.getExtension(EXTENSION_ID);
            assert.ok(extension != null);
            await extension.activate();
            const commands = await vscode.commands.getCommands(true);
            for (const id of ["sparseComplete.showMenu", "sparseComplete.switchModel", "sparseComplete.importModel", "sparseComplete.runBenchmark", "sparseComplete.toggleEnabled"])
                assert.ok(commands.includes(id), id);
        });

        it("completes inline, and accepting inserts the suggestion into the document", async () => {
            const [file] = await vscode.workspace.findFiles("math.ts");
            const document = await vscode.workspace.openTextDocument(file!);
            const editor = await vscode.window.showTextDocument(document);
            const end = document.lineAt(document.lineCount - 1).range.end;
            await editor.edit((edit) => edit.insert(end, "export function multiply(a: number, b: number): number {\n    return "));
            const position = editor.document.lineAt(editor.document.lineCount - 1).range.end;
            editor.selection = new vscode.Selection(position, position);
            const before = editor.document.getText();
            // The model loads in the background; keep asking until a suggestion is accepted.
            await waitFor(async () => {
                await vscode.commands.executeCommand("editor.action.inlineSuggest.trigger");
                await new Promise((resolve) => setTimeout(resolve, 1500));
                await vscode.commands.executeCommand("editor.action.inlineSuggest.commit");
                return editor.document.getText().length > before.length ? true : undefined;
            }, 120_000, "an inline completion to be accepted");
            assert.ok(editor.document.getText().startsWith(before));
        });

        it("swaps to the dense model live when the setting changes", async () => {
            const api = vscode.extensions.getExtension<SparseCompleteApi>(EXTENSION_ID)!.exports;
            await vscode.workspace.getConfiguration("sparseComplete").update("modelVariant", "dense", vscode.ConfigurationTarget.Global);
            const status = await waitFor(() => {
                const current = api.modelStatus();
                return current.kind === "ready" && current.choice.variant === "dense" ? current : undefined;
            }, 120_000, "the dense model to be ready");
            assert.match(status.kind === "ready" ? status.info.weightTypes.join(",") : "", /Q4_0/);
        });
    });
}
