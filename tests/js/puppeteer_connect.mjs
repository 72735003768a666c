// Connects Puppeteer to a CDP endpoint (argv[2]), opens argv[3] in the browser's first page and
// prints one JSON line: {"title", "url", "pages"}. Used by tests/e2e/test_cdp.py.
import puppeteer from "puppeteer-core";

const [endpoint, target] = process.argv.slice(2);
const browser = await puppeteer.connect({ browserWSEndpoint: endpoint, defaultViewport: null });
try {
  const pages = await browser.pages();
  const page = pages[0] ?? (await browser.newPage());
  await page.goto(target, { waitUntil: "domcontentloaded" });
  console.log(JSON.stringify({ title: await page.title(), url: page.url(), pages: pages.length }));
} finally {
  await browser.disconnect();
}
