#!/usr/bin/env node
// The installed package's command (package.json `bin`); in a checkout, packages/cli/bin/emperor.js.
import { main } from '@emperor/cli';

process.exitCode = await main(process.argv.slice(2));
