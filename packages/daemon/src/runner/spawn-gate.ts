// Spawning is synchronous (fork + exec in libuv): 500 vassals appearing at once would hold the
// event loop for a second or more. The gate runs at most SPAWNS_PER_TURN spawns per loop turn and
// defers the rest to the next turns, so file events, timers and the control socket are served in
// between. It bounds the burst, never the rate: a mass deploy still starts as fast as it can.
export const SPAWNS_PER_TURN = 32;

export class SpawnGate {
  readonly #perTurn: number;
  readonly #queue: (() => void)[] = [];
  #usedThisTurn = 0;
  #scheduled = false;

  constructor(perTurn = SPAWNS_PER_TURN) {
    this.#perTurn = perTurn;
  }

  /** Runs `task` now if this turn has room, else on a later turn, in order. */
  run(task: () => void): void {
    if (this.#queue.length === 0 && this.#usedThisTurn < this.#perTurn) {
      this.#usedThisTurn += 1;
      this.#schedule();
      task();
      return;
    }
    this.#queue.push(task);
    this.#schedule();
  }

  get pending(): number {
    return this.#queue.length;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#usedThisTurn = 0;
      const batch = this.#queue.splice(0, this.#perTurn);
      this.#usedThisTurn = batch.length;
      if (this.#queue.length > 0 || batch.length > 0) this.#schedule();
      for (const task of batch) task();
    });
  }
}
