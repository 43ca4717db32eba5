export * from './model.js';
export * from './load.js';
export { clusterConfig } from './schema.js';
export * from './diff.js';
export { DEFAULT_MAX_CONFIG_BYTES } from './read.js';
export { loadConfigOffThread, DEFAULT_LOAD_TIMEOUT_MS } from './offload.js';
