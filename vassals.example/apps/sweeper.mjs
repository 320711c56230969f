// A side worker (`attach-daemon` in shop.ini): says what it does every few seconds and exits
// cleanly on SIGTERM. Needs nothing but Node.
const every = Number(process.env.SWEEP_EVERY_MS ?? 5000);
let sweeps = 0;
console.log(`sweeper up, pid ${process.pid}, side daemon ${process.env.EMPEROR_ATTACH}`);
const timer = setInterval(() => {
  sweeps++;
  console.log(`sweep ${sweeps}: nothing stale`);
}, every);
process.on('SIGTERM', () => {
  clearInterval(timer);
  console.log(`sweeper stopping after ${sweeps} sweeps`);
});
