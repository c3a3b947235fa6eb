// Draws media/icon.png: a 2:4 sparsity pattern (in each group of four weights, two are kept) on a dark tile.
import * as fs from "node:fs";
import * as zlib from "node:zlib";

const size = 128;
const pixels = Buffer.alloc(size * size * 4);
const put = (x, y, [r, g, b, a]) => pixels.set([r, g, b, a], (y * size + x) * 4);
const background = [30, 33, 43, 255], kept = [94, 234, 212, 255], pruned = [60, 66, 84, 255];
// Each row of 8 cells is two groups of four; the kept positions change from row to row, as in a real pruned matrix.
const keptPositions = [[0, 2], [1, 3], [0, 1], [2, 3], [1, 2], [0, 3]];
for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
        const radius = 22, cx = Math.min(Math.max(x, radius), size - 1 - radius), cy = Math.min(Math.max(y, radius), size - 1 - radius);
        put(x, y, (x - cx) ** 2 + (y - cy) ** 2 <= radius * radius ? background : [0, 0, 0, 0]);
    }
const cell = 12, gap = 3, left = (size - (8 * cell + 7 * gap + 4)) / 2, top = (size - (6 * cell + 5 * gap)) / 2;
for (let row = 0; row < 6; row++)
    for (let column = 0; column < 8; column++) {
        const group = column >> 2, inGroup = column & 3;
        const isKept = keptPositions[(row + group * 3) % 6].includes(inGroup);
        const x0 = Math.round(left + column * (cell + gap) + group * 4), y0 = Math.round(top + row * (cell + gap));
        for (let y = y0; y < y0 + cell; y++)
            for (let x = x0; x < x0 + cell; x++)
                put(x, y, isKept ? kept : pruned);
    }

const crcTable = Array.from({length: 256}, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
const crc32 = (bytes) => { let c = 0xffffffff; for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
const chunk = (type, data) => {
    const head = Buffer.alloc(8); head.writeUInt32BE(data.length, 0); head.write(type, 4, "ascii");
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, "ascii"), data])), 0);
    return Buffer.concat([head, data, crc]);
};
const header = Buffer.alloc(13); header.writeUInt32BE(size, 0); header.writeUInt32BE(size, 4); header.set([8, 6, 0, 0, 0], 8);
const rows = Buffer.concat(Array.from({length: size}, (_, y) => Buffer.concat([Buffer.from([0]), pixels.subarray(y * size * 4, (y + 1) * size * 4)])));
fs.writeFileSync(new URL("../media/icon.png", import.meta.url), Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", header), chunk("IDAT", zlib.deflateSync(rows)), chunk("IEND", Buffer.alloc(0))
]));
