export * from './address.js';
export * from './clock.js';
export * from './errors.js';
export * from './log.js';
export * from './subsystem.js';
export * from './bus.js';
export * from './suggest.js';
