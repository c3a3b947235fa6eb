import * as vscode from "vscode";
import {parseSettings, type ParsedSettings} from "../core/settings.js";

export const SETTINGS_SECTION = "sparseComplete";

/** Settings that choose which model is loaded: changing one reloads the model. */
export const MODEL_SETTINGS = ["modelVariant", "customModelPath", "device", "contextTokens", "maxTokens"] as const;

/**
 * Reads the extension's settings. The custom model path is taken from the user's own settings only: a cloned
 * repository's workspace settings must never choose which file the extension loads.
 */
export function readSettings(): ParsedSettings {
    const config = vscode.workspace.getConfiguration(SETTINGS_SECTION);
    const customPath = config.inspect<string>("customModelPath");
    return parseSettings({
        enabled: config.get("enable"),
        modelVariant: config.get("modelVariant"),
        customModelPath: customPath?.globalValue ?? customPath?.defaultValue ?? "",
        device: config.get("device"),
        maxTokens: config.get("maxTokens"),
        debounceMs: config.get("debounceMs"),
        contextTokens: config.get("contextTokens")
    });
}
