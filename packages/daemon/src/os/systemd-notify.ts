// The emperor's own sd_notify, when systemd runs it as a Type=notify service (SPEC §5): READY=1
// after the first scan, STATUS= with a one-line summary, STOPPING=1 at shutdown, and WATCHDOG=1
// pings at half the period systemd asked for. Vassals never see these variables (child-env.ts).
import { sendDatagram } from '@emperor/native';
import type { Logger } from 'pino';

export interface SystemdNotifier {
  ready(status: string): void;
  status(status: string): void;
  stopping(): void;
  close(): void;
}

/** Undefined when not run by systemd with a NOTIFY_SOCKET. */
export function systemdNotifier(
  env: Readonly<Record<string, string | undefined>>,
  logger: Logger,
): SystemdNotifier | undefined {
  const socket = env.NOTIFY_SOCKET;
  if (socket === undefined || socket === '') return undefined;
  let warned = false;
  const send = (text: string): void => {
    try {
      sendDatagram(socket, text);
    } catch (err) {
      if (warned) return;
      warned = true; // once: a gone systemd would otherwise fill the log at every ping
      logger.warn({ event: 'sd-notify-error', err, socket }, 'sd-notify-error');
    }
  };
  const usec = Number(env.WATCHDOG_USEC);
  const forUs = env.WATCHDOG_PID === undefined || env.WATCHDOG_PID === String(process.pid);
  let ping: NodeJS.Timeout | undefined;
  let lastStatus = '';
  return {
    ready(status) {
      lastStatus = status;
      send(`READY=1\nMAINPID=${process.pid}\nSTATUS=${status}`);
      if (usec > 0 && forUs) {
        ping = setInterval(
          () => {
            send('WATCHDOG=1');
          },
          Math.max(1, Math.floor(usec / 2000)),
        );
        ping.unref();
      }
    },
    status(status) {
      if (status === lastStatus) return;
      lastStatus = status;
      send(`STATUS=${status}`);
    },
    stopping() {
      send('STOPPING=1\nSTATUS=stopping every vassal');
    },
    close() {
      clearInterval(ping);
    },
  };
}
