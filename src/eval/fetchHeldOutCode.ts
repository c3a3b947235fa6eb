import {execFile} from "node:child_process";
import {createHash} from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import {promisify} from "node:util";
import {debianPythonFiles, langOf, npmFiles, readReservedPackages, textOk} from "../../model-pipeline/corpus/sourceFileFilters.mjs";

const run = promisify(execFile);

export interface HeldOutFile {
    /** `SOURCE:NAME@VERSION/relative/path`. */
    readonly path: string;
    readonly language: "typescript" | "javascript" | "python";
    readonly text: string;
}

export interface HeldOutPackage {
    readonly source: "npm" | "debian";
    readonly name: string;
    readonly version: string;
    readonly files: readonly HeldOutFile[];
}

export interface PinnedPackage {
    readonly source: "npm" | "debian";
    readonly name: string;
    readonly version: string;
}

/** Where the evaluation's package list and the reserved list live in a checkout. */
export function heldOutPaths(root: string) {
    const corpus = path.join(root, "model-pipeline", "corpus");
    return {
        pinnedList: path.join(corpus, "eval-packages.txt"),
        // The team's shared list beside the checkout wins; the copy in the repository is what a fresh clone has.
        reservedLists: [path.join(root, "..", "shared", "eval-reserved.txt"), path.join(corpus, "eval-reserved.txt")],
        cacheDir: path.join(root, ".cache", "eval")
    };
}

/** Parses eval-packages.txt (`npm:NAME@VERSION`, `debian:NAME=VERSION`) and refuses any package that is not reserved for evaluation. */
export function readPinnedPackages(listText: string, reserved: {npm: ReadonlySet<string>, deb: ReadonlySet<string>}): PinnedPackage[] {
    const packages: PinnedPackage[] = [];
    for (const line of listText.split("\n").map((l) => l.replace(/#.*/, "").trim()).filter((l) => l.length > 0)) {
        const npm = /^npm:(@?[^@\s]+)@(\S+)$/.exec(line);
        const debian = /^debian:([^=\s]+)=(\S+)$/.exec(line);
        const entry: PinnedPackage | undefined = npm != null ? {source: "npm", name: npm[1]!, version: npm[2]!}
            : debian != null ? {source: "debian", name: debian[1]!, version: debian[2]!} : undefined;
        if (entry == null)
            throw new Error(`eval-packages.txt: cannot read "${line}" (expected npm:NAME@VERSION or debian:NAME=VERSION)`);
        if (!(entry.source === "npm" ? reserved.npm : reserved.deb).has(entry.name))
            throw new Error(`eval-packages.txt: ${entry.source}:${entry.name} is not in eval-reserved.txt, so it may be in the training data`);
        packages.push(entry);
    }
    return packages;
}

/** Downloads (npm pack / apt-get download) and unpacks one package into the cache; a cached copy is reused. */
async function unpackPackage(pinned: PinnedPackage, cacheDir: string, log: (message: string) => void): Promise<string> {
    const downloads = path.join(cacheDir, pinned.source);
    const unpacked = path.join(cacheDir, "extract", `${pinned.source}-${pinned.name.replace(/[/@:]/g, "_")}-${pinned.version.replace(/:/g, "_")}`);
    if (fs.existsSync(path.join(unpacked, ".complete")))
        return unpacked;
    fs.mkdirSync(downloads, {recursive: true});
    fs.rmSync(unpacked, {recursive: true, force: true});
    fs.mkdirSync(unpacked, {recursive: true});
    if (pinned.source === "npm") {
        log(`npm pack ${pinned.name}@${pinned.version}`);
        const {stdout} = await run("npm", ["pack", `${pinned.name}@${pinned.version}`, "--json", "--silent", "--pack-destination", downloads]);
        const tarball = path.join(downloads, (JSON.parse(stdout) as {filename: string}[])[0]!.filename);
        await run("tar", ["xzf", tarball, "-C", unpacked, "--no-same-owner"]);
    } else {
        const debName = (file: string) => file.startsWith(`${pinned.name}_${pinned.version.replace(/:/g, "%3a")}_`) && file.endsWith(".deb");
        if (!fs.readdirSync(downloads).some(debName)) {
            log(`apt-get download ${pinned.name}=${pinned.version}`);
            await run("apt-get", ["download", `${pinned.name}=${pinned.version}`], {cwd: downloads});
        }
        const deb = fs.readdirSync(downloads).find(debName);
        if (deb == null)
            throw new Error(`apt-get download ${pinned.name}=${pinned.version} left no .deb in ${downloads}`);
        await run("dpkg", ["-x", path.join(downloads, deb), unpacked]);
    }
    fs.writeFileSync(path.join(unpacked, ".complete"), "");
    return unpacked;
}

/**
 * The source files of an unpacked package, chosen by the training corpus's own rules (sourceFileFilters.mjs): for
 * npm one file per module (TypeScript sources over compiled JS), for Debian the Python 3 sources; no minified,
 * bundled or generated files. Exact duplicates (by content) are dropped across all calls sharing `seen`.
 */
export function collectSourceFiles(pinned: PinnedPackage, unpacked: string, seen: Set<string>): HeldOutFile[] {
    let base = unpacked;
    let relatives: string[];
    if (pinned.source === "npm") {
        const top = fs.readdirSync(unpacked).map((entry) => path.join(unpacked, entry)).find((dir) => fs.existsSync(path.join(dir, "package.json")));
        if (top == null)
            throw new Error(`${pinned.name}@${pinned.version}: no package.json in the tarball`);
        base = top;
        // The package itself is what is evaluated, so no path segment is excluded as "reserved".
        relatives = npmFiles(top, new Set());
    } else {
        relatives = debianPythonFiles(unpacked, new Set());
    }
    const id = pinned.source === "npm" ? `npm:${pinned.name}@${pinned.version}` : `debian:${pinned.name}=${pinned.version}`;
    const files: HeldOutFile[] = [];
    for (const relative of relatives) {
        // Declaration files are API surface, not code anyone completes.
        if (/\.d\.(m|c)?ts$/.test(relative))
            continue;
        const text = fs.readFileSync(path.join(base, relative), "utf8").replace(/\r\n/g, "\n");
        if (textOk(text) != null)
            continue;
        const hash = createHash("sha1").update(text).digest("hex");
        if (seen.has(hash))
            continue;
        seen.add(hash);
        files.push({path: `${id}/${relative}`, language: langOf(relative), text});
    }
    return files;
}

/**
 * The held-out code: every package pinned in model-pipeline/corpus/eval-packages.txt (all reserved for evaluation,
 * never trained on), fetched through the npm registry and the Debian mirrors into .cache/eval/ on first use.
 */
export async function fetchHeldOutCode(root: string, log: (message: string) => void = () => undefined): Promise<HeldOutPackage[]> {
    const paths = heldOutPaths(root);
    const reservedList = paths.reservedLists.find((file) => fs.existsSync(file));
    if (reservedList == null)
        throw new Error(`eval-reserved.txt not found (looked in ${paths.reservedLists.join(", ")})`);
    const pinned = readPinnedPackages(fs.readFileSync(paths.pinnedList, "utf8"), readReservedPackages(reservedList));
    const seen = new Set<string>();
    const packages: HeldOutPackage[] = [];
    for (const entry of pinned) {
        const unpacked = await unpackPackage(entry, paths.cacheDir, log);
        packages.push({...entry, files: collectSourceFiles(entry, unpacked, seen)});
    }
    return packages;
}
