// ESM type entry (`import ... from 'gatewise'`): the same declarations as the CommonJS
// entry, as index.mjs exports the same objects as index.js.
export * from './index.js'
