#!/usr/bin/env node
// Committed entry point: npm links bins before `prepare` compiles, so the target must exist in git.
import { main } from '../dist/src/main.js';

process.exitCode = await main(process.argv.slice(2));
