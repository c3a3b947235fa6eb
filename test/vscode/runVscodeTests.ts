/**
 * `npm run test:vscode`: the extension-host suite in a VS Code downloaded by @vscode/test-electron (for machines that
 * can reach VS Code's downloads; where none can, `npm run test:e2e` covers the same behaviours in code-server).
 */
import * as path from "node:path";
import {runTests} from "@vscode/test-electron";
import {repoRoot} from "../support/fixtures.js";

async function main(): Promise<void> {
    await runTests({
        extensionDevelopmentPath: repoRoot,
        extensionTestsPath: path.join(repoRoot, "dist", "test", "vscode", "index.cjs"),
        launchArgs: [path.join(repoRoot, "test", "vscode", "workspace"), "--disable-extensions", "--disable-workspace-trust"]
    });
}

main().catch((error) => {
    console.error(`VS Code tests failed: ${(error as Error).message}`);
    process.exit(1);
});
