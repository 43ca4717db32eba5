export { convertKeepalived, convertTree, type Conversion, type ConvertOptions } from './convert.js';
export { readKeepalived, preprocess, KeepalivedError, type ConfigFiles, type SourceLine } from './source.js';
export { parseTree, tokenize, type KNode, type Word } from './parse.js';
export { nodeFiles } from './files.js';
export type { Item } from './context.js';
