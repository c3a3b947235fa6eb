import {spawn, spawnSync, type ChildProcess} from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import {chromium, type Browser, type Page} from "playwright-core";
import {freePort} from "../../src/bench/freePort.js";
import {repoRoot} from "../support/fixtures.js";

const codeServerEntry = path.join(repoRoot, ".cache", "code-server", "node_modules", "code-server", "out", "node", "entry.js");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/**
 * A real VS Code (code-server) on 127.0.0.1 with a fresh profile, the packaged .vsix installed, and a Chromium page
 * driven by Playwright.
 */
export class CodeServerSession {
    public page!: Page;
    private browser?: Browser;
    private server?: ChildProcess;
    public readonly serverLog: string[] = [];

    private constructor(public readonly home: string, public readonly workspace: string, public readonly userSettingsPath: string) {}

    /**
     * `workspaceTrust`: open the folder with VS Code's workspace trust on, so it asks whether to trust the folder
     * (the test answers); off by default.
     */
    public static async start(vsixPath: string, files: Record<string, string>, settings: Record<string, unknown>,
        {workspaceTrust = false}: {workspaceTrust?: boolean} = {}): Promise<CodeServerSession> {
        const home = await fs.mkdtemp(path.join(os.tmpdir(), "sparse-complete-e2e-"));
        const workspace = path.join(home, "workspace");
        const userData = path.join(home, "user-data");
        const extensions = path.join(home, "extensions");
        await fs.mkdir(path.join(userData, "User"), {recursive: true});
        await fs.mkdir(workspace, {recursive: true});
        for (const [name, text] of Object.entries(files)) {
            await fs.mkdir(path.dirname(path.join(workspace, name)), {recursive: true});
            await fs.writeFile(path.join(workspace, name), text);
        }
        const session = new CodeServerSession(home, workspace, path.join(userData, "User", "settings.json"));
        await session.writeUserSettings({
            "workbench.startupEditor": "none",
            "security.workspace.trust.enabled": workspaceTrust,
            "security.workspace.trust.startupPrompt": "always",
            "telemetry.telemetryLevel": "off",
            "extensions.autoCheckUpdates": false,
            "update.mode": "none",
            "workbench.tips.enabled": false,
            ...settings
        });
        const common = ["--user-data-dir", userData, "--extensions-dir", extensions];
        const install = spawnSync(process.execPath, [codeServerEntry, ...common, "--install-extension", vsixPath], {encoding: "utf8"});
        if (install.status !== 0 || !/successfully installed/.test(install.stdout))
            throw new Error(`installing ${vsixPath} into code-server failed:\n${install.stdout}\n${install.stderr}`);

        const port = await freePort();
        session.server = spawn(process.execPath, [codeServerEntry, ...common, "--bind-addr", `127.0.0.1:${port}`, "--auth", "none",
            "--disable-telemetry", "--disable-update-check", ...(workspaceTrust ? [] : ["--disable-workspace-trust"]), workspace],
        {stdio: ["ignore", "pipe", "pipe"]});
        session.server.stdout!.on("data", (data) => session.serverLog.push(String(data)));
        session.server.stderr!.on("data", (data) => session.serverLog.push(String(data)));
        await session.waitForServer(port);

        session.browser = await chromium.launch({
            executablePath: chromiumPath,
            args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]
        });
        session.page = await session.browser.newPage({viewport: {width: 1280, height: 800}});
        await session.page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
        await session.page.waitForSelector(".monaco-workbench", {timeout: 90_000});
        return session;
    }

    private async waitForServer(port: number): Promise<void> {
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline) {
            if (this.serverLog.join("").includes("HTTP server listening"))
                return;
            if (this.server?.exitCode != null)
                break;
            await new Promise((resolve) => setTimeout(resolve, 200));
        }
        throw new Error(`code-server did not start on port ${port}:\n${this.serverLog.join("")}`);
    }

    /** Replaces the user settings; VS Code picks the change up as if the user had edited settings.json. */
    public async writeUserSettings(settings: Record<string, unknown>): Promise<void> {
        await fs.writeFile(this.userSettingsPath, JSON.stringify(settings, null, 2));
    }

    /** Edits settings.json in VS Code's own settings editor, as a user would (the server does not watch the file). */
    public async editUserSettings(settings: Record<string, unknown>): Promise<void> {
        await this.runCommand("Preferences: Open User Settings (JSON)");
        await this.page.waitForSelector(".monaco-editor .view-lines", {timeout: 30_000});
        await this.page.waitForTimeout(1000);
        await this.page.keyboard.press("Control+A");
        // One line, inserted without key events: no auto-indent or auto-closed brackets to fight.
        await this.page.keyboard.insertText(JSON.stringify(settings));
        await this.page.keyboard.press("Control+S");
        await this.page.waitForTimeout(500);
        await this.page.keyboard.press("Control+W");
    }

    public async readUserSettings(): Promise<Record<string, unknown>> {
        return JSON.parse(await fs.readFile(this.userSettingsPath, "utf8")) as Record<string, unknown>;
    }

    public async openFile(name: string): Promise<void> {
        await this.page.click(`.explorer-viewlet >> text=${name}`);
        await this.page.waitForSelector(".monaco-editor .view-lines", {timeout: 30_000});
        await this.page.click(".monaco-editor .view-lines");
    }

    /** Texts of the status bar items. */
    public async statusBar(): Promise<string[]> {
        return (await this.statusItems()).map((item) => item.text);
    }

    public async waitForStatus(pattern: RegExp, timeoutMs = 60_000): Promise<string> {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            const found = (await this.statusBar()).find((text) => pattern.test(text));
            if (found != null)
                return found;
            if (Date.now() > deadline)
                throw new Error(`no status bar item matched ${pattern}; items: ${JSON.stringify(await this.statusBar())}`);
            await this.page.waitForTimeout(250);
        }
    }

    /** Status bar items with their codicons (VS Code draws `$(loading~spin)` as an icon, not as text). */
    public async statusItems(): Promise<{text: string, icons: string[]}[]> {
        return this.page.$$eval(".statusbar-item", (items) => items.map((item) => ({
            text: item.textContent?.trim() ?? "",
            // (this file is compiled without DOM types: the element's shape as used here)
            icons: Array.from((item as unknown as {querySelectorAll(selector: string): ArrayLike<{classList: ArrayLike<string>}>})
                .querySelectorAll(".codicon")).flatMap((icon) => Array.from(icon.classList))
        })).filter((item) => item.text.length > 0));
    }

    /**
     * The text of the status bar item that shows the model (matching `label`) if it is loaded: not loading, failed or
     * disabled; throws if the load failed.
     */
    public async loadedModel(label: RegExp): Promise<string | undefined> {
        const item = (await this.statusItems()).find((candidate) => label.test(candidate.text));
        if (item?.icons.includes("codicon-error"))
            throw new Error(`the model failed to load: ${item.text}`);
        return item != null && !item.icons.some((icon) => /codicon-(loading|circle-slash|circle-outline)/.test(icon)) ? item.text : undefined;
    }

    public async waitForModelReady(label: RegExp, timeoutMs = 120_000): Promise<string> {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            const loaded = await this.loadedModel(label);
            if (loaded != null)
                return loaded;
            if (Date.now() > deadline)
                throw new Error(`no loaded model matched ${label}; items: ${JSON.stringify(await this.statusItems())}`);
            await this.page.waitForTimeout(250);
        }
    }

    /** The ghost text the inline completion shows, as rendered. */
    public async ghostText(timeoutMs = 30_000): Promise<string> {
        await this.page.waitForSelector(".ghost-text-decoration, .ghost-text", {timeout: timeoutMs});
        return this.page.$$eval(".ghost-text-decoration, .ghost-text", (parts) => parts.map((part) => part.textContent ?? "").join(""));
    }

    public async runCommand(title: string): Promise<void> {
        await this.page.keyboard.press("Control+Shift+P");
        await this.page.waitForSelector(".quick-input-widget input", {timeout: 10_000});
        await this.page.keyboard.type(title);
        await this.page.waitForTimeout(400);
        await this.page.keyboard.press("Enter");
    }

    public async screenshot(file: string): Promise<void> {
        await this.page.screenshot({path: file});
    }

    /**
     * The extension's own log (its "Sparse Complete" output channel: every request's outcome, the engine's stderr) and
     * the extension host's, as VS Code wrote them under the profile's logs folder, newest session first; with the
     * server's output. What a failed test leaves to look at: the profile is deleted at dispose.
     */
    public async logs(): Promise<{name: string, text: string}[]> {
        const found: {name: string, text: string}[] = [];
        const walk = async (dir: string): Promise<void> => {
            for (const entry of await fs.readdir(dir, {withFileTypes: true}).catch(() => [])) {
                const full = path.join(dir, entry.name);
                if (entry.isDirectory())
                    await walk(full);
                else if (/Sparse Complete|exthost\.log$/.test(entry.name))
                    found.push({name: path.relative(this.home, full), text: await fs.readFile(full, "utf8").catch((error: unknown) => `(unreadable: ${String(error)})`)});
            }
        };
        await walk(path.join(this.home, "user-data", "logs"));
        found.sort((a, b) => b.name.localeCompare(a.name));
        found.push({name: "code-server output", text: this.serverLog.join("")});
        return found;
    }

    public async dispose(): Promise<void> {
        await this.browser?.close().catch(() => undefined);
        this.server?.kill();
        await fs.rm(this.home, {recursive: true, force: true}).catch(() => undefined);
    }
}
