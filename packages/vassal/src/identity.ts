type Env = Readonly<Record<string, string | undefined>>;

export interface VassalIdentity {
  /** The vassal's name (its file name without `.ini`). */
  readonly vassal: string;
  /** This instance's slot, 0 to `processes` - 1. */
  readonly instance: number;
  /** Counts starts and reloads of the vassal; the instances of one generation share it. */
  readonly generation: number;
}

/** Who this process is, when the emperor runs it; undefined otherwise. */
export function identity(env: Env = process.env): VassalIdentity | undefined {
  const { EMPEROR_VASSAL: vassal, EMPEROR_INSTANCE: instance, EMPEROR_GENERATION: generation } = env;
  if (vassal === undefined || instance === undefined || generation === undefined) return undefined;
  return { vassal, instance: Number(instance), generation: Number(generation) };
}
