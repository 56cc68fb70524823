// Usage: node cors-e2e.mjs <graphql url> <key> <allowed page url> <refused page url>
// Headless Chromium (playwright-core) opens a page on each of two other
// origins and, from each, POSTs a query to mlgate with `fetch` (an
// `Authorization` header, so the browser sends a preflight first).
// Prints one JSON line: what each origin's fetch got.
import { chromium } from 'playwright-core';

const [graphql, key, allowed, refused] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const call = async (pageUrl) => {
  const page = await browser.newPage();
  await page.goto(pageUrl);
  return page.evaluate(
    async ([url, key]) => {
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ query: '{ me { tenant role } }' }),
        });
        return { status: response.status, requestId: response.headers.get('x-request-id'), body: await response.json() };
      } catch (error) {
        return { error: String(error) };
      }
    },
    [graphql, key],
  );
};
try {
  const summary = { allowed: await call(allowed), refused: await call(refused) };
  console.log(JSON.stringify(summary));
} finally {
  await browser.close();
}
