export * from './model.js';
export * from './load.js';
export { clusterConfig } from './schema.js';
export * from './diff.js';
