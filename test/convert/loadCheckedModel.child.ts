/**
 * Child process for convertModel.test.ts: loads a model with checkTensors through our build and prints
 * {refused, message, logs} as JSON. A fresh process, because node-llama-cpp routes native log lines to the
 * first Llama instance of a process only, and the test needs the loader's log lines.
 */
import {loadSparseLlama} from "../../src/native/loadSparseLlama.js";

const logs: string[] = [];
const llama = await loadSparseLlama({gpu: false, logger: (_level, message) => logs.push(message)});
let refused = false;
let message = "";
try {
    const model = await llama.loadModel({modelPath: process.argv[2]!, checkTensors: true});
    await model.dispose();
} catch (error) {
    refused = true;
    message = (error as Error).message;
}
await new Promise((resolve) => setTimeout(resolve, 200)); // log lines arrive asynchronously
await llama.dispose();
process.stdout.write(JSON.stringify({refused, message, logs}));
