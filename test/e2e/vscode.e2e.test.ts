import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {readBundledModels} from "../../src/core/modelCatalog.js";
import {generatedDir, paths, repoRoot, tinyModelPath} from "../support/fixtures.js";
import {CodeServerSession} from "./CodeServerSession.js";

const vsixPath = path.join(repoRoot, "sparse-complete.vsix");
// Screenshots go to the ignored fixtures folder; UPDATE_SCREENSHOTS=1 writes the README's copies in media/ instead.
const mediaDir = process.env.UPDATE_SCREENSHOTS ? path.join(repoRoot, "media") : path.join(generatedDir, "screenshots");

const mathTs = "export function add(a: number, b: number): number {\n    return a + b;\n}\n\n";

interface E2eModels {
    /** Settings selecting the first model, and the second one, with the status bar label each shows. */
    readonly first: {settings: Record<string, unknown>, label: RegExp};
    /** Absent without bundled models: code-server is a remote window, where a machine-scoped path set in user settings is ignored. */
    readonly second?: {settings: Record<string, unknown>, label: RegExp};
}

/** The bundled sparse and dense models when they are there (what users get), else two test models as custom files. */
async function e2eModels(): Promise<E2eModels> {
    const bundled = await readBundledModels(repoRoot);
    const has = (variant: string) => bundled.some((m) => m.variant === variant && fs.existsSync(path.join(paths.modelsDir, m.file)));
    if (has("sparse") && has("dense"))
        return {
            first: {settings: {"sparseComplete.modelVariant": "sparse"}, label: /\bsparse\b/},
            second: {settings: {"sparseComplete.modelVariant": "dense"}, label: /\bdense\b/}
        };
    return {first: {settings: {"sparseComplete.modelVariant": "custom", "sparseComplete.customModelPath": await tinyModelPath()}, label: /tiny-llama-fim\.gguf/}};
}

/**
 * A failed test's screenshot and logs into the fixtures folder, and the logs' ends on stderr, so that a CI run's output
 * alone says which requests the extension saw and how each ended (a run on another machine keeps no files).
 */
async function keepFailureEvidence(session: CodeServerSession, title: string): Promise<void> {
    const stem = path.join(generatedDir, `e2e-failure-${title.replace(/\W+/g, "-")}`);
    fs.mkdirSync(stem, {recursive: true});
    await session.screenshot(`${stem}.png`).catch((error: unknown) => console.error(`no screenshot: ${String(error)}`));
    for (const log of await session.logs()) {
        fs.writeFileSync(path.join(stem, log.name.replace(/[\\/]+/g, "__")), log.text);
        const tail = log.text.trimEnd().split("\n").slice(-60).join("\n");
        console.error(`--- ${log.name} (last 60 lines; all of it in ${stem}) ---\n${tail}`);
    }
}

describe("the extension in a real VS Code (code-server, Chromium, Playwright)", function () {
    this.timeout(300_000);
    let session: CodeServerSession;
    let models: E2eModels;

    before(async function () {
        if (!fs.existsSync(vsixPath))
            throw new Error(`${vsixPath} is missing: \`npm run test:e2e\` packages it first`);
        fs.mkdirSync(mediaDir, {recursive: true});
        models = await e2eModels();
        session = await CodeServerSession.start(vsixPath, {"math.ts": mathTs, "early.ts": "// typed while the model loads\n"},
            {"sparseComplete.device": "cpu", ...models.first.settings});
    });
    afterEach(async function () {
        if (this.currentTest?.state === "failed" && session != null)
            await keepFailureEvidence(session, this.currentTest.title);
    });
    after(async () => { await session?.dispose(); });

    it("answers what was typed while the model loaded, once it is ready, without more typing", async () => {
        await session.openFile("early.ts");
        await session.page.keyboard.press("Control+End");
        await session.page.keyboard.type("export function square(x: number): number {\n", {delay: 10});
        // VS Code asks once per edit; the extension asks again for it when the model is ready.
        if (await session.loadedModel(models.first.label) != null)
            console.log("      (the model was loaded before the typing ended: this ran as a plain completion)");
        // The model's load and the first completion (the previous tests gave them 120 and 60 s).
        assert.ok((await session.ghostText(180_000)).trim().length > 0, "ghost text is shown");
    });

    it("loads the model and shows it in the status bar", async () => {
        await session.waitForModelReady(models.first.label);
    });

    it("shows ghost text while typing, and Tab accepts it into the document", async () => {
        await session.openFile("math.ts");
        await session.page.keyboard.press("Control+End");
        await session.page.keyboard.type("export function multiply(a: number, b: number): number {\n", {delay: 40});
        const ghost = await session.ghostText(60_000);
        assert.ok(ghost.trim().length > 0, "ghost text is shown");
        await session.screenshot(path.join(mediaDir, "screenshot-ghost-text.png"));

        await session.page.keyboard.press("Control+S");
        await session.page.waitForTimeout(500);
        const before = fs.readFileSync(path.join(session.workspace, "math.ts"), "utf8");
        await session.page.keyboard.press("Tab");
        await session.page.keyboard.press("Control+S");
        await session.page.waitForTimeout(800);
        const after = fs.readFileSync(path.join(session.workspace, "math.ts"), "utf8");
        assert.ok(before.startsWith(mathTs + "export function multiply(a: number, b: number): number {"), "the typed text is in the document");
        assert.ok(after.length > before.length, "Tab inserted the completion");
        const firstWord = ghost.trim().split(/\s+/)[0]!;
        assert.ok(after.includes(firstWord), `the accepted text contains the ghost text's start (${JSON.stringify(firstWord)})`);
        assert.match(await session.waitForStatus(models.first.label), /\d+ ms/, "the status bar shows the last latency");
    });

    it("swaps the model live when the settings change, and the status bar follows", async function () {
        if (models.second == null)
            this.skip();
        const current = await session.readUserSettings();
        await session.editUserSettings({...current, ...models.second!.settings});
        const label = await session.waitForStatus(models.second!.label, 120_000);
        assert.doesNotMatch(label, /loading|error/i);
        await session.screenshot(path.join(mediaDir, "screenshot-model-switch.png"));
    });

    it("runs the benchmark command and shows sparse and dense side by side in a panel", async () => {
        await session.runCommand("Sparse Complete: Run Benchmark");
        const deadline = Date.now() + 280_000;
        let table = "";
        while (Date.now() < deadline && table.length === 0) {
            await session.page.waitForTimeout(2000);
            for (const frame of session.page.frames()) {
                // A string, evaluated in the webview's page (this file is compiled without DOM types).
                const text = await frame.evaluate<string>("document.getElementById('benchmark-title') ? document.body.innerText : ''").catch(() => "");
                if (text.length > 0)
                    table = text;
            }
        }
        assert.match(table, /Sparse vs dense/);
        assert.match(table, /Fill-in-the-middle: 2k-token context/);
        assert.match(table, /Typing replay/);
        if (models.second != null)
            assert.match(table, /\d+\.\d+x/, "a speedup is shown");
        await session.screenshot(path.join(mediaDir, "screenshot-benchmark.png"));
    });
});

describe("an untrusted workspace that tries to choose the model (code-server, restricted mode)", function () {
    this.timeout(300_000);
    let session: CodeServerSession | undefined;
    afterEach(async function () {
        if (this.currentTest?.state === "failed" && session != null)
            await keepFailureEvidence(session, this.currentTest.title);
    });
    after(async () => { await session?.dispose(); });

    it("ignores the workspace's model settings and completes with the user's own", async () => {
        const bundled = await readBundledModels(repoRoot);
        if (!bundled.some((m) => m.variant === "sparse" && fs.existsSync(path.join(paths.modelsDir, m.file))))
            throw new Error("the bundled sparse model is missing");
        // What a cloned repository could ship: settings pointing the extension at a file of its choosing.
        const hostile = JSON.stringify({
            "sparseComplete.modelVariant": "custom",
            "sparseComplete.customModelPath": "/tmp/not-a-model-from-the-repository.gguf",
            "sparseComplete.device": "gpu"
        });
        session = await CodeServerSession.start(vsixPath, {"math.ts": mathTs, ".vscode/settings.json": hostile},
            {"sparseComplete.device": "cpu", "sparseComplete.modelVariant": "sparse"}, {workspaceTrust: true});
        // VS Code asks whether to trust the folder's authors: no.
        const distrust = session.page.getByRole("button", {name: /don't trust|no,? i don't trust/i});
        await distrust.first().click({timeout: 60_000});
        const label = await session.waitForModelReady(/\bsparse\b/);
        assert.doesNotMatch(label, /custom|not-a-model/i);
        await session.openFile("math.ts");
        await session.page.keyboard.press("Control+End");
        await session.page.keyboard.type("export function multiply(a: number, b: number): number {\n", {delay: 40});
        assert.ok((await session.ghostText(60_000)).trim().length > 0, "completions work in restricted mode");
    });
});
