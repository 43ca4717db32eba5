// The topologies moved to src/lab/topologies.ts (the demo uses them too); tests keep importing from here.
export * from '../../../src/lab/topologies.js';
