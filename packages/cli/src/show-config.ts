// `emperor show`'s config section in the vassal file's own words: key names as written in a
// `[vassal]` section and values in the syntax the file takes (seconds, sizes with a unit, octal
// modes), defaults included. `--json` keeps the daemon's field names and raw numbers.

/** Fields that are not keys, or are shown above the config section already. */
const SKIP = new Set(['name', 'file', 'shell', 'argv', 'placeholders', 'uwsgi']);

/** Fields whose key is not their name in kebab case (lists are named for one entry). */
const KEYS: Readonly<Record<string, string>> = {
  sockets: 'socket',
  envFiles: 'env-file',
  attachDaemons: 'attach-daemon',
  smartAttachDaemons: 'smart-attach-daemon',
  crons: 'cron',
};

const OCTAL = new Set(['socketMode', 'umask']);

/** `KEY = VALUE` lines, one per value of a repeatable key; empty lists and unset keys are left out. */
export function configLines(config: Readonly<Record<string, unknown>>): string[] {
  const out: string[] = [];
  for (const [field, value] of Object.entries(config)) {
    if (SKIP.has(field) || value === null || value === undefined) continue;
    const key = KEYS[field] ?? kebab(field.replace(/(Ms|Bytes)$/, ''));
    const items = Array.isArray(value) ? (value as unknown[]) : [value];
    for (const [k, text] of items.flatMap((item) => render(field, item)).entries()) {
      const unique = field === 'crons' && (items[k] as { unique?: boolean }).unique === true;
      out.push(`${unique ? 'unique-cron' : key} = ${text}`);
    }
  }
  return out;
}

function render(field: string, value: unknown): string[] {
  if (field === 'env') return Object.entries(value as Record<string, string>).map(([k, v]) => `${k}=${v}`);
  return [one(field, value)];
}

function one(field: string, value: unknown): string {
  if (typeof value === 'number') {
    if (field.endsWith('Ms')) return String(value / 1000);
    if (field.endsWith('Bytes')) return size(value);
    if (OCTAL.has(field)) return `0${value.toString(8).padStart(3, '0')}`;
    return String(value);
  }
  if (typeof value !== 'object' || value === null) return String(value);
  const o = value as Record<string, unknown>;
  switch (field) {
    case 'sockets':
      return typeof o.name === 'string' ? `${o.name}=${String(o.address)}` : String(o.address);
    case 'ready':
      return o.kind === 'delay' ? `delay:${Number(o.ms) / 1000}` : String(o.kind);
    case 'reload':
      return o.kind === 'signal' ? `signal:${String(o.signal)}` : String(o.kind);
    case 'user':
    case 'group':
      return String(o.name);
    case 'socketOwner':
      return `${typeof o.uid === 'number' ? o.uid : ''}:${typeof o.gid === 'number' ? o.gid : ''}`;
    case 'smartAttachDaemons':
      return `${String(o.pidfile)} ${String(o.command)}`;
    case 'crons':
      return cron(o);
  }
  return JSON.stringify(value);
}

/** 200M for 200 MiB, 512K, 2G; bytes with `B` when no unit divides them. */
function size(bytes: number): string {
  for (const [unit, n] of [
    ['G', 2 ** 30],
    ['M', 2 ** 20],
    ['K', 2 ** 10],
  ] as const) {
    if (bytes > 0 && bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return `${bytes}B`;
}

const CRON_FIELDS = [
  ['minute', 0, 59],
  ['hour', 0, 23],
  ['day', 1, 31],
  ['month', 1, 12],
  ['weekday', 0, 6],
] as const;

/** Back to crontab fields: `*` for a whole range, else the values the job runs at. */
function cron(o: Record<string, unknown>): string {
  const fields = CRON_FIELDS.map(([name, lo, hi]) => {
    const values = o[name] as number[];
    return values.length === hi - lo + 1 ? '*' : values.join(',');
  });
  return `${fields.join(' ')} ${String(o.command)}`;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
