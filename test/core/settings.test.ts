import * as assert from "node:assert/strict";
import {defaultSettings, parseSettings} from "../../src/core/settings.js";

describe("parseSettings", () => {
    it("takes valid values and reports each invalid one, falling back to its default", () => {
        const {settings, problems} = parseSettings({modelVariant: "dense", maxTokens: 99999, device: "tpu", debounceMs: 10, contextTokens: "big"});
        assert.equal(settings.modelVariant, "dense");
        assert.equal(settings.debounceMs, 10);
        assert.equal(settings.maxTokens, defaultSettings.maxTokens);
        assert.equal(settings.device, defaultSettings.device);
        assert.equal(settings.contextTokens, defaultSettings.contextTokens);
        assert.equal(problems.length, 3);
    });
});
