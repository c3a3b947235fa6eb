import * as vscode from "vscode";
import type {CompletionPipeline} from "../core/CompletionPipeline.js";
import type {ModelStatus} from "../core/ModelSession.js";
import type {DocumentSnapshot} from "../core/PromptWindow.js";

/** Documents that are real editors; output panes, diff views of git objects and the like get no completions. */
export const COMPLETABLE_DOCUMENTS: vscode.DocumentFilter[] = ["file", "untitled", "vscode-notebook-cell", "vscode-remote", "vscode-userdata"]
    .map((scheme) => ({scheme}));

/** A notebook cell's prompt includes the cells above it, so the model sees the notebook's imports and definitions. */
function snapshotOf(document: vscode.TextDocument, position: vscode.Position): DocumentSnapshot {
    const text = document.getText();
    const offset = document.offsetAt(position);
    if (document.uri.scheme !== "vscode-notebook-cell")
        return {key: document.uri.toString(), text, offset};
    const notebook = vscode.workspace.notebookDocuments.find((nb) => nb.getCells().some((cell) => cell.document === document));
    if (notebook == null)
        return {key: document.uri.toString(), text, offset};
    const above: string[] = [];
    for (const cell of notebook.getCells()) {
        if (cell.document === document)
            break;
        if (cell.kind === vscode.NotebookCellKind.Code && cell.document.languageId === document.languageId)
            above.push(cell.document.getText());
    }
    const head = above.length > 0 ? above.join("\n\n") + "\n\n" : "";
    return {key: notebook.uri.toString(), text: head + text, offset: head.length + offset};
}

/** The thin adapter from VS Code's inline completion API to the IDE-free pipeline. */
export class InlineCompletionProvider implements vscode.InlineCompletionItemProvider {
    /** VS Code asked while the model loaded (it asks again only on the next edit or cursor move). */
    private askedWhileLoading = false;
    private settledBefore = false;

    public constructor(
        private readonly pipeline: CompletionPipeline,
        private readonly modelState: () => ModelStatus["kind"],
        private readonly activity: {started(): void, ended(latencyMs?: number): void}
    ) {}

    /**
     * A load ended (ready or failed). If it is ready, completions are on, and the user typed while it loaded (VS Code
     * asked meanwhile, or, after the first load since activation, the active document was edited since it was opened:
     * typing before the extension activated never reaches the provider; its version counts those edits, saved or not),
     * ask again at the cursor, so the suggestion appears without more typing. A user who has not typed gets no
     * suggestion out of nowhere, and a failed load forgets the request (fixing it later triggers nothing).
     */
    public modelSettled(ready: boolean, completionsEnabled: boolean): void {
        const editor = vscode.window.activeTextEditor;
        const typedBeforeActivation = !this.settledBefore && editor != null && editor.document.version > 1;
        const asked = this.askedWhileLoading || typedBeforeActivation;
        this.settledBefore = true;
        this.askedWhileLoading = false;
        if (ready && completionsEnabled && asked)
            void vscode.commands.executeCommand("editor.action.inlineSuggest.trigger");
    }

    public async provideInlineCompletionItems(document: vscode.TextDocument, position: vscode.Position,
        _context: vscode.InlineCompletionContext, token: vscode.CancellationToken): Promise<vscode.InlineCompletionItem[] | undefined> {
        const state = this.modelState();
        if (state !== "ready") {
            this.askedWhileLoading ||= state === "loading";
            return undefined;
        }
        const controller = new AbortController();
        const subscription = token.onCancellationRequested(() => controller.abort());
        let latencyMs: number | undefined;
        this.activity.started();
        try {
            const result = await this.pipeline.complete(snapshotOf(document, position), controller.signal);
            if (result == null || token.isCancellationRequested)
                return undefined;
            latencyMs = result.latencyMs;
            return [new vscode.InlineCompletionItem(result.text, new vscode.Range(position, position))];
        } finally {
            subscription.dispose();
            this.activity.ended(latencyMs);
        }
    }
}
