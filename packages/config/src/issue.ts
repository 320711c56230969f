import type { ErrorCode } from './errors.js';

/** One problem found in a vassal file. `line` is undefined for problems of the file as a whole. */
export interface ConfigIssue {
  readonly code: ErrorCode;
  readonly severity: 'error' | 'warning';
  readonly file: string;
  readonly line: number | undefined;
  readonly key: string | undefined;
  readonly message: string;
}

/**
 * `FILE:LINE: error: message [CODE]`, as compilers print diagnostics, so editors and CI
 * annotate the line; `FILE: error: ...` for file-level problems.
 */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}`;
  return `${where}: ${issue.severity}: ${issue.message} [${issue.code}]`;
}

/** Collects issues of one file; the parser's phases share it so that one pass reports everything. */
export class IssueList {
  readonly errors: ConfigIssue[] = [];
  readonly warnings: ConfigIssue[] = [];
  constructor(readonly file: string) {}

  error(code: ErrorCode, line: number | undefined, key: string | undefined, message: string): void {
    this.errors.push({ code, severity: 'error', file: this.file, line, key, message });
  }

  warn(code: ErrorCode, line: number | undefined, key: string | undefined, message: string): void {
    this.warnings.push({ code, severity: 'warning', file: this.file, line, key, message });
  }
}

/** File-level issues first, then by line; stable, so issues of one line keep their order. */
export function byLine(a: ConfigIssue, b: ConfigIssue): number {
  return (a.line ?? 0) - (b.line ?? 0);
}
