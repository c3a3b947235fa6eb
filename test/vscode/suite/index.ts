// Entry VS Code loads into the extension host (bundled as dist/test/vscode/index.cjs): runs the suite with mocha.
import Mocha from "mocha";
import {registerExtensionSuite} from "./extension.vscode-test.js";

export function run(): Promise<void> {
    const mocha = new Mocha({ui: "bdd", timeout: 180_000, color: true});
    mocha.suite.emit("pre-require", globalThis, "extension-suite", mocha);
    registerExtensionSuite();
    return new Promise((resolve, reject) => {
        mocha.run((failures) => (failures > 0 ? reject(new Error(`${failures} VS Code tests failed`)) : resolve()));
    });
}
