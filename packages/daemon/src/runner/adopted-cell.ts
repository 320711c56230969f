// The cell of a smart-attach-daemon found running (its pidfile named a live daemon): it was not
// spawned into a cell of ours, so only that process is known; it is killed by pid, after checking
// that the pid still names it.
import { isAlive } from '../os/process-tree.js';
import type { PidfileProcess } from '../os/pidfile.js';
import type { Cell } from './confinement.js';

export function adoptedCell({ pid, startTime }: PidfileProcess): Cell {
  const kill = (): void => {
    if (!isAlive(pid, startTime)) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile, or not ours to signal
    }
  };
  return {
    cgroupFd: undefined,
    spawned: () => undefined,
    kill,
    end: (ms) => {
      kill();
      const deadline = Date.now() + ms;
      return new Promise((resolve) => {
        const look = (): void => {
          if (!isAlive(pid, startTime)) resolve([]);
          else if (Date.now() >= deadline) resolve([pid]);
          else setTimeout(look, 50);
        };
        look();
      });
    },
  };
}
