// A periodic job (`cron` in shop.ini): asks the shop how it is, prints one line and exits, as a
// cron job should. Exits 1 when the shop does not answer: `emperor status` shows the last exit.
// Needs nothing but Node.
const url = `http://127.0.0.1:${process.env.PORT ?? 8106}/`;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  console.log(`report: ${url} answered ${res.status} (job run by pid ${process.pid})`);
} catch (err) {
  console.error(`report: ${url} did not answer: ${err.message}`);
  process.exitCode = 1;
}
