import * as vscode from "vscode";
import type {ModelStatus} from "../core/ModelSession.js";

/** One status bar item: loading / ready / generating / error, the variant, and the last latency. Click opens the menu. */
export class StatusBar implements vscode.Disposable {
    private readonly item = vscode.window.createStatusBarItem("sparseComplete.status", vscode.StatusBarAlignment.Right, 100);
    private model: ModelStatus = {kind: "idle"};
    private enabled = true;
    private generating = 0;
    private lastLatencyMs?: number;

    public constructor() {
        this.item.name = "Sparse Complete";
        this.item.command = "sparseComplete.showMenu";
        this.render();
        this.item.show();
    }

    public setModel(status: ModelStatus): void {
        this.model = status;
        this.render();
    }

    public setEnabled(enabled: boolean): void {
        this.enabled = enabled;
        this.render();
    }

    /** Counts overlapping requests, so the spinner stops only when the last one ends. */
    public requestStarted(): void {
        this.generating++;
        this.render();
    }

    public requestEnded(latencyMs?: number): void {
        this.generating = Math.max(0, this.generating - 1);
        if (latencyMs != null)
            this.lastLatencyMs = latencyMs;
        this.render();
    }

    private render(): void {
        const status = this.model;
        const variant = status.kind === "idle" ? "" : status.choice?.label ?? "";
        this.item.backgroundColor = undefined;
        if (!this.enabled) {
            this.item.text = `$(circle-slash) ${variant}`;
            this.item.tooltip = "Sparse Complete is disabled. Click for options.";
            return;
        }
        switch (status.kind) {
            case "idle":
                this.item.text = "$(circle-outline) Sparse Complete";
                this.item.tooltip = "No model loaded";
                return;
            case "loading":
                this.item.text = `$(loading~spin) ${variant} ${Math.round(status.fraction * 100)}%`;
                this.item.tooltip = `Loading ${status.choice.path}`;
                return;
            case "error":
                this.item.text = `$(error) ${variant || "Sparse Complete"}`;
                this.item.tooltip = status.error.message;
                this.item.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
                return;
            case "ready": {
                const latency = this.lastLatencyMs != null ? ` ${Math.round(this.lastLatencyMs)} ms` : "";
                this.item.text = this.generating > 0 ? `$(sync~spin) ${variant}${latency}` : `$(sparkle) ${variant}${latency}`;
                const info = status.info;
                this.item.tooltip = new vscode.MarkdownString([
                    `**${info.name}** (${variant})`,
                    `${info.weightTypes.join(", ")} · ${(info.sizeBytes / 1e6).toFixed(1)} MB · ${info.backend}${info.fallbackReason ? ` (${info.fallbackReason})` : ""}`,
                    `context ${info.contextSize} tokens · ${info.supportsFim ? "fill-in-the-middle" : "prefix completion"}`,
                    this.lastLatencyMs != null ? `last completion ${Math.round(this.lastLatencyMs)} ms` : ""
                ].filter(Boolean).join("\n\n"));
                return;
            }
        }
    }

    public dispose(): void {
        this.item.dispose();
    }
}
