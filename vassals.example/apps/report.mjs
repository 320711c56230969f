// A periodic job (`cron` in shop.ini): asks the shop how it is, prints one line and exits, as a
// cron job should. Exits 1 when the shop does not answer: `emperor status` shows the last exit.
// Needs nothing but Node.
import { get } from 'node:http';

const url = `http://127.0.0.1:${process.env.PORT ?? 8106}/`;
const fail = (why) => {
  console.error(`report: ${url} did not answer: ${why}`);
  process.exitCode = 1;
};
get(url, { timeout: 5000 }, (res) => {
  res.resume();
  console.log(`report: ${url} answered ${res.statusCode} (job run by pid ${process.pid})`);
})
  .on('timeout', function () {
    this.destroy(new Error('no answer within 5 s'));
  })
  .on('error', (err) => fail(err.message));
