#!/usr/bin/env node
// Builds the training corpus from package registries a fresh machine can reach:
// npm tarballs (`npm pack`) for TypeScript/JavaScript and Debian packages
// (`apt-get download` + `dpkg -x`) for Python. Filters out non-permissive licenses,
// minified/bundled/generated files and the packages reserved for evaluation,
// deduplicates (exact + whitespace-normalized hash) and writes
//   model-pipeline/work/corpus/docs.jsonl     one {"p": path, "l": lang, "t": text} per file
//   model-pipeline/corpus/manifest.json       package, version, license, files, bytes
//
// Usage: node model-pipeline/corpus/fetch-corpus.mjs [--pin]
//   --pin  resolve the seed lists (*.in) to exact versions and (re)write the pinned lists (*.txt).
//          Without it the pinned lists are used, so reruns fetch the same versions.
import {spawn, execFileSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import {fileURLToPath} from "node:url";
import {DECL, debianPythonFiles, debLicense, debLicenseOk, langOf, npmFiles, npmLicenseOk, readReservedPackages, textOk} from "./sourceFileFilters.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const pipeline = path.resolve(here, "..");
const repoRoot = path.resolve(pipeline, "..");
const work = path.join(pipeline, "work");
const cacheNpm = path.join(work, "cache", "npm");
const cacheDeb = path.join(work, "cache", "deb");
const extractRoot = path.join(work, "extract");
const outDir = path.join(work, "corpus");
const pin = process.argv.includes("--pin");

// Per-package caps keep one huge package (sympy, aws-sdk) from dominating the mix.
const NPM_CAP = 4 << 20;
const DEB_CAP = 4 << 20;
const STDLIB_CAP = 16 << 20;
const DECL_CAP = 1 << 20; // .d.ts only for packages without TS sources

function readList(name) {
    return fs.readFileSync(path.join(here, name), "utf8").split("\n")
        .map((l) => l.replace(/#.*/, "").trim()).filter(Boolean);
}

function loadReserved() {
    // Lives beside the checkout in the team's shared folder; a copy is kept next to this script.
    const candidates = [path.join(repoRoot, "..", "shared", "eval-reserved.txt"), path.join(here, "eval-reserved.txt")];
    const file = candidates.find((f) => fs.existsSync(f));
    if (file == null) throw new Error("eval-reserved.txt not found");
    return readReservedPackages(file);
}

function run(cmd, args, opts = {}) {
    return new Promise((resolve, reject) => {
        const p = spawn(cmd, args, {stdio: ["ignore", "pipe", "pipe"], ...opts});
        let out = "", err = "";
        p.stdout.on("data", (d) => out += d);
        p.stderr.on("data", (d) => err += d);
        p.on("close", (code) => code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(" ")}: ${code} ${err.slice(-500)}`)));
    });
}

async function pool(items, n, fn) {
    const res = new Array(items.length);
    let i = 0;
    await Promise.all(Array.from({length: n}, async () => {
        while (i < items.length) {
            const k = i++;
            try { res[k] = await fn(items[k], k); } catch (e) { res[k] = {error: String(e.message ?? e)}; }
        }
    }));
    return res;
}

const seenExact = new Set(), seenNorm = new Set();
const stats = {dupExact: 0, dupNear: 0, rejected: {}};
function dedupOk(text) {
    const h = crypto.createHash("sha1").update(text).digest("base64");
    if (seenExact.has(h)) { stats.dupExact++; return false; }
    seenExact.add(h);
    // Near-duplicates: same code up to whitespace/indentation and line-comment edits.
    const norm = text.replace(/^\s*(\/\/|#).*$/gm, "").replace(/\s+/g, "");
    const n = crypto.createHash("sha1").update(norm).digest("base64");
    if (seenNorm.has(n)) { stats.dupNear++; return false; }
    seenNorm.add(n);
    return true;
}
const reject = (why) => { stats.rejected[why] = (stats.rejected[why] ?? 0) + 1; };

// ---------- main ----------
const reserved = loadReserved();
fs.mkdirSync(cacheNpm, {recursive: true});
fs.mkdirSync(cacheDeb, {recursive: true});
fs.mkdirSync(outDir, {recursive: true});

const npmPinned = path.join(here, "npm-packages.txt");
const debPinned = path.join(here, "debian-packages.txt");
let npmSpecs = pin || !fs.existsSync(npmPinned) ? readList("npm-packages.in") : readList("npm-packages.txt");
let debSpecs = pin || !fs.existsSync(debPinned) ? readList("debian-packages.in") : readList("debian-packages.txt");
const npmName = (spec) => spec.replace(/^(@?[^@]+)@.*$/, "$1");
npmSpecs = [...new Set(npmSpecs)].filter((s) => {
    if (reserved.npm.has(npmName(s))) { console.error(`skip reserved npm:${s}`); return false; }
    return true;
});
debSpecs = [...new Set(debSpecs)].filter((s) => {
    if (reserved.deb.has(s.split("=")[0])) { console.error(`skip reserved debian:${s}`); return false; }
    return true;
});

console.error(`npm: ${npmSpecs.length} packages, debian: ${debSpecs.length} packages`);

// npm pack caches by exact name@version; an unpinned spec always asks the registry.
const npmResults = await pool(npmSpecs, 6, async (spec) => {
    const m = /^(@?[^@]+)@(.+)$/.exec(spec);
    if (m) {
        const file = path.join(cacheNpm, `${m[1].replace(/^@/, "").replace("/", "-")}-${m[2]}.tgz`);
        if (fs.existsSync(file)) return {name: m[1], version: m[2], file};
    }
    const out = await run("npm", ["pack", spec, "--json", "--silent", "--pack-destination", cacheNpm]);
    const j = JSON.parse(out)[0];
    return {name: j.name, version: j.version, file: path.join(cacheNpm, j.filename)};
});

// apt-get download takes the candidate version unless pinned as name=version.
const debByName = new Map();
const indexDebs = () => {
    for (const f of fs.readdirSync(cacheDeb).filter((f) => f.endsWith(".deb"))) {
        const [name, ver] = execFileSync("dpkg-deb", ["-f", path.join(cacheDeb, f), "Package", "Version"], {encoding: "utf8"})
            .split("\n").map((l) => l.replace(/^\w+:\s*/, ""));
        debByName.set(`${name}=${ver}`, {name, version: ver, file: path.join(cacheDeb, f)});
        if (!debByName.has(name) || pin) debByName.set(name, debByName.get(`${name}=${ver}`));
    }
};
indexDebs();
const missingDeb = debSpecs.filter((s) => !debByName.has(s) || (pin && !s.includes("=")));
for (let i = 0; i < missingDeb.length; i += 40) {
    const batch = missingDeb.slice(i, i + 40);
    try { await run("apt-get", ["download", ...batch], {cwd: cacheDeb}); } catch (e) {
        // One unknown name fails the whole batch: retry one by one.
        for (const s of batch) { try { await run("apt-get", ["download", s], {cwd: cacheDeb}); } catch (e2) { console.error(`apt: ${s}: ${e2.message.split("\n")[0]}`); } }
    }
}
indexDebs();

const docsPath = path.join(outDir, "docs.jsonl");
const docsOut = fs.openSync(docsPath, "w");
const manifest = {
    description: "Training corpus for the bundled code model: permissively licensed registry code, deduplicated and filtered",
    reserved_for_eval: path.basename(reserved.file), packages: [], skipped: [],
};
let total = {files: 0, bytes: 0, byLang: {}};

function emit(source, name, version, license, rels, baseDir, cap, idPrefix) {
    let bytes = 0, files = 0, declBytes = 0;
    for (const rel of rels) {
        if (bytes >= cap) break;
        let text;
        try { text = fs.readFileSync(path.join(baseDir, rel), "utf8"); } catch { continue; }
        text = text.replace(/\r\n/g, "\n");
        const bad = textOk(text);
        if (bad) { reject(bad); continue; }
        if (DECL.test(rel)) { if (declBytes + text.length > DECL_CAP) { reject("decl-cap"); continue; } }
        if (!dedupOk(text)) continue;
        if (DECL.test(rel)) declBytes += text.length;
        const lang = langOf(rel);
        fs.writeSync(docsOut, JSON.stringify({p: `${idPrefix}/${rel}`, l: lang, t: text}) + "\n");
        bytes += Buffer.byteLength(text); files++;
        total.byLang[lang] = (total.byLang[lang] ?? 0) + Buffer.byteLength(text);
    }
    total.files += files; total.bytes += bytes;
    manifest.packages.push({source, name, version, license, files, bytes});
}

const pinnedNpm = [];
for (let i = 0; i < npmSpecs.length; i++) {
    const r = npmResults[i];
    if (r.error) { manifest.skipped.push({source: "npm", spec: npmSpecs[i], reason: r.error.slice(0, 200)}); console.error(`npm fail ${npmSpecs[i]}: ${r.error.slice(0, 200)}`); continue; }
    if (reserved.npm.has(r.name)) continue;
    const dir = path.join(extractRoot, "npm", `${r.name.replace("/", "__")}@${r.version}`);
    if (!fs.existsSync(dir)) { fs.mkdirSync(dir, {recursive: true}); execFileSync("tar", ["xzf", r.file, "-C", dir, "--no-same-owner"]); }
    pinnedNpm.push(`${r.name}@${r.version}`);
    const top = fs.readdirSync(dir).map((d) => path.join(dir, d)).find((d) => fs.existsSync(path.join(d, "package.json")));
    if (top == null) { manifest.skipped.push({source: "npm", spec: `${r.name}@${r.version}`, reason: "no package.json"}); continue; }
    const pj = JSON.parse(fs.readFileSync(path.join(top, "package.json"), "utf8"));
    const lic = pj.license ?? (Array.isArray(pj.licenses) ? pj.licenses.map((l) => l.type ?? l).join(" OR ") : null);
    if (!npmLicenseOk(lic)) { manifest.skipped.push({source: "npm", spec: `${r.name}@${r.version}`, reason: `license ${JSON.stringify(lic)}`}); continue; }
    emit("npm", r.name, r.version, typeof lic === "object" ? lic.type : lic, npmFiles(top, reserved.npm), top, NPM_CAP, `npm:${r.name}@${r.version}`);
}

const pinnedDeb = [];
const RESERVED_PY = new Set([...reserved.deb].map((d) => d.replace(/^python3-/, "")));
for (const spec of debSpecs) {
    const r = debByName.get(spec);
    if (r == null) { manifest.skipped.push({source: "debian", spec, reason: "not downloadable"}); continue; }
    if (reserved.deb.has(r.name)) continue;
    pinnedDeb.push(`${r.name}=${r.version}`);
    const dir = path.join(extractRoot, "deb", `${r.name}_${r.version.replace(/:/g, "%3a")}`);
    if (!fs.existsSync(dir)) { fs.mkdirSync(dir, {recursive: true}); execFileSync("dpkg", ["-x", r.file, dir]); }
    const docDir = path.join(dir, "usr", "share", "doc");
    let cr = path.join(docDir, r.name, "copyright");
    if (!fs.existsSync(cr) && fs.existsSync(docDir)) {
        const any = fs.readdirSync(docDir).map((d) => path.join(docDir, d, "copyright")).find((f) => fs.existsSync(f));
        if (any) cr = any;
    }
    if (!fs.existsSync(cr)) {
        // Doc folder symlinked to a sibling package's: read the installed one if present, else skip.
        const sys = `/usr/share/doc/${r.name}/copyright`;
        cr = fs.existsSync(sys) ? sys : null;
    }
    const lic = cr ? debLicense(fs.readFileSync(cr, "utf8")) : "unknown";
    if (!debLicenseOk(lic)) { manifest.skipped.push({source: "debian", spec: `${r.name}=${r.version}`, reason: `license ${lic}`}); continue; }
    if (!fs.existsSync(path.join(dir, "usr", "lib"))) { manifest.skipped.push({source: "debian", spec: `${r.name}=${r.version}`, reason: "no python files"}); continue; }
    const rels = debianPythonFiles(dir, RESERVED_PY);
    emit("debian", r.name, r.version, lic, rels, dir, r.name.startsWith("libpython") ? STDLIB_CAP : DEB_CAP, `debian:${r.name}=${r.version}`);
}
fs.closeSync(docsOut);

if (pin) {
    fs.writeFileSync(npmPinned, "# Pinned by fetch-corpus.mjs --pin from npm-packages.in\n" + pinnedNpm.join("\n") + "\n");
    fs.writeFileSync(debPinned, "# Pinned by fetch-corpus.mjs --pin from debian-packages.in (Debian bookworm)\n" + pinnedDeb.join("\n") + "\n");
}
manifest.totals = {...total, packages: manifest.packages.filter((p) => p.files > 0).length, duplicates_exact: stats.dupExact,
    duplicates_near: stats.dupNear, rejected_files: stats.rejected,
    docs_sha256: crypto.createHash("sha256").update(fs.readFileSync(docsPath)).digest("hex")};
fs.writeFileSync(path.join(here, "manifest.json"), JSON.stringify(manifest, null, 1) + "\n");
console.error(JSON.stringify(manifest.totals, null, 1));
