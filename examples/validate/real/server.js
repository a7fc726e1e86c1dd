// The real/node workload (issue 14): a service that requires a large npm tree,
// says READY, then loads more (babel's preset, eslint's rules, moment's locales,
// prettier's parser, TypeScript's lib files) as its first requests would. DONE is
// its last line.
'use strict';
const fs = require('fs');
const path = require('path');

const express = require('express');
const _ = require('lodash');
const moment = require('moment');
const ts = require('typescript');
const babel = require('@babel/core');
const webpack = require('webpack');
const rxjs = require('rxjs');
const { ESLint, Linter } = require('eslint');
const prettier = require('prettier');
const Ajv = require('ajv');
const yargs = require('yargs');
const uuid = require('uuid');
const math = require('mathjs');

const app = express();
app.use(express.json());
app.get('/health', (_req, res) => res.json({ ok: true, id: uuid.v4() }));
const validate = new Ajv().compile({
  type: 'object',
  properties: { n: { type: 'integer' } },
  required: ['n'],
});
if (!validate({ n: 1 }) || typeof webpack !== 'function' || !ESLint || !yargs) {
  throw new Error('a module did not load');
}
console.log('READY');

async function main() {
  const src = 'const f = async (a, ...b) => { for (const x of b) await a?.[x] ?? 0; return class { #p = 1 }; };';
  // Babel's preset-env: every plugin of the preset.
  const out = babel.transformSync(src, {
    babelrc: false,
    configFile: false,
    presets: [[require.resolve('@babel/preset-env'), { targets: 'ie 11' }]],
  });
  // ESLint: all its built-in rules (loaded lazily, one file each).
  const linter = new Linter();
  const rules = {};
  for (const [name] of linter.getRules()) rules[name] = 'warn';
  const messages = linter.verify(src, {
    parserOptions: { ecmaVersion: 2022 },
    rules,
  });
  // moment's locales, one module each.
  const localeDir = path.join(path.dirname(require.resolve('moment')), 'locale');
  for (const f of fs.readdirSync(localeDir)) require(path.join(localeDir, f));
  // Prettier's babel parser and estree printer.
  const pretty = await prettier.format(out.code, { parser: 'babel' });
  // TypeScript's lib files, as a type-checking request would read them.
  const libDir = path.dirname(require.resolve('typescript'));
  let libBytes = 0;
  for (const f of fs.readdirSync(libDir)) {
    if (f.startsWith('lib.') && f.endsWith('.d.ts')) libBytes += fs.readFileSync(path.join(libDir, f)).length;
  }
  const r = await rxjs.lastValueFrom(rxjs.range(1, 100).pipe(rxjs.map((x) => x * 2), rxjs.reduce((a, b) => a + b, 0)));
  console.log(
    `babel ${out.code.length} eslint ${messages.length} prettier ${pretty.length} ts-lib ${libBytes} ` +
      `rx ${r} det ${math.det([[1, 2], [3, 4]])} ${_.chunk([1, 2, 3], 2).length} ${moment.locales().length} ${ts.version}`,
  );
  console.log('DONE');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
