// Diffs the desired set (vassal definitions, from every source merged) against the running
// machines. The only place that creates machines or tells them their definition changed or is gone.
import {
  claimedSockets,
  parseVassalBytes,
  placedOn,
  formatIssue,
  SocketClaims,
  socketConflictIssue,
  type ConfigIssue,
  type ParseOptions,
} from '@emperor/config';
import type { Logger } from 'pino';
import type { SourceUpdate } from './sources/source.js';
import type { VassalRunner } from './runner/vassal-runner.js';
import type { VassalConfig } from '@emperor/config';

export interface ReconcilerDeps {
  readonly logger: Logger;
  readonly now: () => number;
  readonly parseOptions: Omit<ParseOptions, 'file' | 'origin'>;
  readonly createRunner: (config: VassalConfig) => VassalRunner;
  /** This emperor's node name: a vassal whose `nodes` match it not is not run here. */
  readonly nodeName: string;
  /** Told how long after the watcher's first event for a file the emperor acted on it (ms). */
  readonly onReaction?: (name: string, ms: number) => void;
}

interface Applied {
  readonly origin: string;
  readonly identity: string;
  readonly contentHash: string;
  /** Tyrant mode: the file's owner, whom its vassal runs as. */
  readonly owner: string | undefined;
  /** The config parsed from this version, when valid: a touch (same content) hands the same object on. */
  readonly config: VassalConfig | undefined;
}

export class Reconciler {
  readonly #deps: ReconcilerDeps;
  readonly runners = new Map<string, VassalRunner>();
  readonly #applied = new Map<string, Applied>();
  /** Duplicates already reported (`name\0path`): each is logged once, not at every scan. */
  readonly #duplicates = new Set<string>();
  /** Pending config errors by vassal name: the running generation (if any) keeps serving. */
  readonly errors = new Map<string, { readonly path: string; readonly issues: readonly ConfigIssue[] }>();
  /** A second file defining a running name, by name: shown by `emperor status` under the first. */
  readonly duplicates = new Map<string, { readonly path: string; readonly issues: readonly ConfigIssue[] }>();
  /** The addresses of the configs handed to runners: the first vassal to claim one keeps it. */
  readonly #claims = new SocketClaims();
  /** Valid configs refused for an address another vassal holds, retried at each scan. */
  readonly #blocked = new Map<string, Candidate>();

  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
  }

  #closed = false;

  /** The emperor is shutting down: a scan still in flight must not start or reload anything. */
  close(): void {
    this.#closed = true;
  }

  /** `scan`: the whole desired set, every source's part of it (SourceSet). */
  apply(scan: SourceUpdate): void {
    if (this.#closed) return;
    const { logger, now } = this.#deps;
    // Removals first: a renamed vassal's sockets start to free up before its successor binds them.
    for (const name of [...this.#applied.keys()]) {
      if (scan.vassals.has(name)) continue;
      this.#applied.delete(name);
      this.errors.delete(name);
      this.#claims.delete(name);
      this.#blocked.delete(name);
      this.runners.get(name)?.dispatch({ type: 'remove', at: now() });
    }
    this.duplicates.clear();
    for (const dup of scan.duplicates) {
      if (this.duplicates.has(dup.name)) continue;
      this.duplicates.set(dup.name, {
        path: dup.origin,
        issues: [duplicateIssue(dup.name, dup.origin, dup.firstOrigin)],
      });
    }
    const dupKeys = new Set(scan.duplicates.map((d) => `${d.name}\0${d.origin}`));
    for (const key of this.#duplicates) if (!dupKeys.has(key)) this.#duplicates.delete(key);
    for (const dup of scan.duplicates) {
      const key = `${dup.name}\0${dup.origin}`;
      if (this.#duplicates.has(key)) continue;
      this.#duplicates.add(key);
      const issue = duplicateIssue(dup.name, dup.origin, dup.firstOrigin);
      logger.error(
        { vassal: dup.name, event: 'config-error', file: dup.origin, code: issue.code },
        formatIssue(issue),
      );
    }
    const candidates: Candidate[] = [];
    for (const [name, file] of scan.vassals) {
      const prev = this.#applied.get(name);
      if (prev?.identity === file.identity && prev.origin === file.origin) continue;
      const owner = file.owner === undefined ? undefined : `${file.owner.uid}:${file.owner.gid}`;
      const parsed = parseVassalBytes(
        file.bytes ?? new Uint8Array(),
        {
          ...this.#deps.parseOptions,
          file: file.origin,
          ...(file.dir === undefined ? {} : { origin: { name, dir: file.dir } }),
          ...(file.owner ? { owner: file.owner } : {}),
        },
        file.size,
      );
      // Touched with the same content: the machine is handed the config it runs (its `touched`).
      const result =
        parsed.ok &&
        prev?.config &&
        prev.origin === file.origin &&
        prev.owner === owner &&
        prev.contentHash === file.contentHash
          ? { ...parsed, config: prev.config }
          : parsed;
      this.#applied.set(name, {
        origin: file.origin,
        identity: file.identity,
        contentHash: file.contentHash,
        owner,
        config: result.ok ? result.config : undefined,
      });
      const runner = this.runners.get(name);
      if (prev !== undefined && prev.owner !== owner && runner && !runner.disposed) {
        // Tyrant mode: the file was given to someone else. What runs as the old owner stops
        // (uWSGI's Emperor does the same); the file's new version starts afresh if it is valid.
        logger.warn(
          { vassal: name, event: 'owner-changed', file: file.origin, from: prev.owner, to: owner },
          `${file.origin} changed owner (uid:gid ${prev.owner ?? '?'} -> ${owner ?? '?'}): its vassal stops`,
        );
        this.#claims.delete(name);
        this.#blocked.delete(name);
        runner.dispatch({ type: 'remove', at: now() });
      }
      const issues =
        file.bytes === undefined ? [unreadable(file.origin, file.readError)] : result.ok ? [] : result.errors;
      for (const w of result.warnings)
        logger.warn(
          { vassal: name, event: 'config-warning', code: w.code, file: w.file, line: w.line },
          formatIssue(w),
        );
      if (result.ok && result.config.uwsgi && result.config !== prev?.config) {
        // A uWSGI vassal: which of its addresses the emperor owns (fd), and why not the others.
        const listeners = result.config.uwsgi.listeners;
        const owned = listeners.flatMap((l) => (l.owned ? [`${l.key} ${l.address}`] : []));
        logger.info(
          {
            vassal: name,
            event: 'uwsgi-sockets',
            owned,
            not_owned: listeners.flatMap((l) =>
              l.owned ? [] : [{ socket: `${l.key} ${l.address}`, reason: l.reason }],
            ),
          },
          owned.length > 0
            ? `owns ${owned.join(', ')} for uWSGI (fd 3 on); a reload rolls`
            : `uWSGI binds its own addresses; a reload is its graceful SIGHUP`,
        );
      }
      if (issues.length > 0 || !result.ok) {
        this.#blocked.delete(name);
        this.errors.set(name, { path: file.origin, issues });
        for (const i of issues) {
          logger.error(
            { vassal: name, event: 'config-error', code: i.code, file: i.file, line: i.line, key: i.key },
            formatIssue(i),
          );
        }
        continue;
      }
      if (!placedOn(result.config.nodes, this.#deps.nodeName)) {
        this.#notHere(name, result.config, prev?.config);
        continue;
      }
      candidates.push({
        name,
        config: result.config,
        mtimeNs: file.modifiedNs,
        changedAt: scan.changedAt.get(file.origin),
        logged: undefined,
      });
    }
    for (const [name, blocked] of this.#blocked)
      if (!candidates.some((c) => c.name === name)) candidates.push(blocked);
    this.#claimSockets(candidates);
  }

  /**
   * Hands each valid config to its runner unless it overlaps an address that another vassal
   * holds. Vassals that hold addresses already go first, then the files in the order they were
   * last modified (as `emperor check` orders them), so the first claimant keeps the address and
   * the newcomer gets EMP_VASSAL_SOCKET_CONFLICT naming it, instead of failing to bind.
   */
  #claimSockets(candidates: Candidate[]): void {
    const { logger, now } = this.#deps;
    const holds = (c: Candidate): number => (this.runners.get(c.name)?.disposed === false ? 0 : 1);
    candidates.sort(
      (a, b) =>
        holds(a) - holds(b) ||
        (a.mtimeNs < b.mtimeNs ? -1 : a.mtimeNs > b.mtimeNs ? 1 : 0) ||
        (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    );
    for (const c of candidates) {
      const { name, config } = c;
      // Addresses uWSGI binds itself count too: refused here, not an EADDRINUSE loop in uWSGI.
      const sockets = claimedSockets(config);
      const clashes = this.#claims.clashes(name, sockets);
      if (clashes.length > 0) {
        const issues = clashes.map((clash) => socketConflictIssue(config.file, clash));
        this.errors.set(name, { path: config.file, issues });
        const text = issues.map(formatIssue).join('\n');
        if (c.logged !== text)
          for (const i of issues)
            logger.error(
              { vassal: name, event: 'config-error', code: i.code, file: i.file, line: i.line, key: i.key },
              formatIssue(i),
            );
        // A later start is no reaction to this change of the file: changedAt goes.
        this.#blocked.set(name, { ...c, changedAt: undefined, logged: text });
        continue;
      }
      this.#blocked.delete(name);
      this.errors.delete(name);
      this.#claims.set({ name, file: config.file }, sockets);
      const runner = this.runners.get(name);
      if (!runner || runner.disposed) {
        const fresh = this.#deps.createRunner(config);
        this.runners.set(name, fresh);
        fresh.dispatch({ type: 'start', at: now() });
      } else {
        runner.dispatch({ type: 'update', config, at: now() });
        // A reload refused before anything stopped (a missing program) keeps the older version
        // serving on its own sockets: they stay claimed beside the file's, until a scan applies it.
        const serving = runner.vassal.config;
        if (serving !== config)
          this.#claims.set({ name, file: config.file }, [...claimedSockets(serving), ...sockets]);
      }
      this.#reacted(name, c.changedAt);
    }
  }

  /** A valid config whose `nodes` leave this node out: stopped here, like a removed file. */
  #notHere(name: string, config: VassalConfig, before: VassalConfig | undefined): void {
    this.errors.delete(name);
    this.#claims.delete(name);
    this.#blocked.delete(name);
    const runner = this.runners.get(name);
    if (runner && !runner.disposed) runner.dispatch({ type: 'remove', at: this.#deps.now() });
    if (before === undefined || placedOn(before.nodes, this.#deps.nodeName) || runner)
      this.#deps.logger.info(
        { vassal: name, event: 'not-placed', node: this.#deps.nodeName, nodes: config.nodes.join(' ') },
        `${name} runs on nodes ${config.nodes.join(' ')}, not on ${this.#deps.nodeName}: ${runner ? 'stopped' : 'not started'} here`,
      );
  }

  #reacted(name: string, changedAt: number | undefined): void {
    if (changedAt !== undefined) this.#deps.onReaction?.(name, Math.max(0, this.#deps.now() - changedAt));
  }

  /** Called by a runner that has disposed of itself. */
  forget(runner: VassalRunner): void {
    if (this.runners.get(runner.name) === runner) this.runners.delete(runner.name);
  }
}

/** A valid config waiting to be handed to its runner. */
interface Candidate {
  readonly name: string;
  readonly config: VassalConfig;
  readonly mtimeNs: bigint;
  readonly changedAt: number | undefined;
  /** The conflict last logged for it, so that a retry at each scan does not log it again. */
  readonly logged: string | undefined;
}

function duplicateIssue(name: string, path: string, firstPath: string): ConfigIssue {
  return {
    code: 'EMP_VASSAL_DUPLICATE',
    severity: 'error',
    file: path,
    line: undefined,
    key: undefined,
    message: `vassal ${name} is already defined by ${firstPath}; this file is ignored until that one is gone`,
  };
}

function unreadable(path: string, reason: string | undefined): ConfigIssue {
  return {
    code: 'EMP_CONFIG_FILE_UNREADABLE',
    severity: 'error',
    file: path,
    line: undefined,
    key: undefined,
    message: `cannot read the file: ${reason ?? 'unknown error'}`,
  };
}
