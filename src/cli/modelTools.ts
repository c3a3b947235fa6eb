// Library entry for the project's Node scripts (scripts/*.mjs): GGUF reading without a TypeScript loader.
export {readGgufHeader} from "../gguf/GgufReader.js";
