export { startEmperor, type Emperor, type EmperorOptions } from './emperor.js';
export { parseVassalsSpec, type VassalsSpec } from './sources/vassals-spec.js';
export { createLogger } from './logger.js';
export { defaultPaths, type EmperorPaths } from './paths.js';
export { ensureRuntimeDir, RuntimeDirError } from './os/runtime-dir.js';
export { transition, createVassal } from './machine/transition.js';
export * from './machine/types.js';
export * from './control/index.js';
