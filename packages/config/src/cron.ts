// Cron lines: `MIN HOUR DAY MONTH WEEKDAY COMMAND` in crontab(5) syntax (`*`, `*/5`, `1-5`,
// `1,15`, names, `@daily`) or uWSGI's (`-1` any, `-N` every N). Each field expands to the
// sorted list of values it matches, so the daemon only compares numbers.
import { fail, ok, type Converted } from './converters.js';
import type { CronField } from './types.js';

interface FieldSpec {
  readonly label: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

const FIELDS: readonly FieldSpec[] = [
  { label: 'minute', min: 0, max: 59 },
  { label: 'hour', min: 0, max: 23 },
  { label: 'day', min: 1, max: 31 },
  {
    label: 'month',
    min: 1,
    max: 12,
    names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'],
  },
  // 7 is Sunday too, as in crontab; it folds into 0 below.
  { label: 'weekday', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
];

const MACROS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

export interface ParsedCron {
  readonly minute: CronField;
  readonly hour: CronField;
  readonly day: CronField;
  readonly month: CronField;
  readonly weekday: CronField;
  readonly dayOrWeekday: boolean;
  readonly command: string;
}

const EXPECTED =
  "expected `MIN HOUR DAY MONTH WEEKDAY COMMAND` (`*/5 * * * * cmd`, uWSGI's `-5 -1 -1 -1 -1 cmd`, or `@daily cmd`)";

export function cronLine(value: string): Converted<ParsedCron> {
  let fieldsText: string[];
  let command: string;
  if (value.startsWith('@')) {
    const m = /^(@\S+)\s+(\S.*)$/.exec(value);
    const macro = m?.[1] === undefined ? undefined : MACROS[m[1].toLowerCase()];
    if (macro === undefined || m?.[2] === undefined) {
      return fail(
        `expected one of ${Object.keys(MACROS).join(', ')} followed by a command (\`@reboot\` is not supported)`,
      );
    }
    fieldsText = macro.split(' ');
    command = m[2];
  } else {
    const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S.*)$/.exec(value);
    if (m === null) return fail(EXPECTED);
    fieldsText = m.slice(1, 6).map((s) => s);
    command = m[6] ?? '';
  }
  const fields: CronField[] = [];
  const star: boolean[] = [];
  for (let i = 0; i < FIELDS.length; i++) {
    const spec = FIELDS[i];
    const text = fieldsText[i];
    if (spec === undefined || text === undefined) return fail(EXPECTED);
    const parsed = cronField(text, spec);
    if (!parsed.ok) {
      // A word where a time field belongs: the line has fewer than five fields.
      const why = /^[a-z]{4,}$/i.test(text) ? `is not a time field; ${EXPECTED}` : parsed.message;
      return fail(`${spec.label} field \`${text}\`: ${why}`);
    }
    fields.push(parsed.value);
    // crontab(5): a field starting with `*` is unrestricted for the day-or-weekday rule.
    star.push(text.startsWith('*') || /^-[0-9]+$/.test(text));
  }
  const [minute = [], hour = [], day = [], month = [], weekdayRaw = []] = fields;
  const weekday = [...new Set(weekdayRaw.map((d) => d % 7))].sort((a, b) => a - b);
  return ok({
    minute,
    hour,
    day,
    month,
    weekday,
    dayOrWeekday: star[2] === false && star[4] === false,
    command,
  });
}

function cronField(text: string, spec: FieldSpec): Converted<CronField> {
  const range = `${spec.min}-${spec.max}`;
  const uwsgi = /^-([0-9]+)$/.exec(text);
  if (uwsgi?.[1] !== undefined) {
    const n = Number(uwsgi[1]);
    if (n === 0) return fail('`-0` means nothing; uWSGI uses `-1` for any and `-N` for every N');
    return ok(stepped(spec.min, spec.max, n === 1 ? 1 : n));
  }
  const values = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\*|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:\/([0-9]+))?$/i.exec(part);
    if (m === null)
      return fail(
        `expected \`*\`, a number, a range \`a-b\`, a step \`/n\` or a list \`a,b\`, within ${range}`,
      );
    const step = m[4] === undefined ? 1 : Number(m[4]);
    if (step < 1 || step > spec.max) return fail(`step \`/${m[4] ?? ''}\` must be from 1 to ${spec.max}`);
    let lo = spec.min;
    let hi = spec.max;
    if (m[1] !== '*') {
      const a = fieldValue(m[2] ?? '', spec);
      const b = m[3] === undefined ? (m[4] === undefined ? a : spec.max) : fieldValue(m[3], spec);
      if (a === undefined || b === undefined)
        return fail(
          `values must be within ${range}${spec.names ? ' or names like `' + (spec.names[1] ?? '') + '`' : ''}`,
        );
      if (a > b) return fail(`range \`${part}\` goes backwards`);
      lo = a;
      hi = b;
    }
    for (const v of stepped(lo, hi, step)) values.add(v);
  }
  return ok([...values].sort((a, b) => a - b));
}

function fieldValue(s: string, spec: FieldSpec): number | undefined {
  const byName = spec.names?.indexOf(s.toLowerCase()) ?? -1;
  if (byName >= 0) return byName + spec.min;
  if (!/^[0-9]{1,2}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= spec.min && n <= spec.max ? n : undefined;
}

function stepped(lo: number, hi: number, step: number): number[] {
  const out: number[] = [];
  for (let v = lo; v <= hi; v += step) out.push(v);
  return out;
}
