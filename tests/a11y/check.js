#!/usr/bin/env node
// Accessibility check of one HTML file (Redline's post-mortem): loads it from a file:// URL in
// the system's Chromium (puppeteer-core downloads no browser), runs axe-core with the WCAG 2.1
// A and AA rule tags, prints every violation and exits 1 if there is any.
//
// Usage: node check.js FILE.html [SCREENSHOT.png]
//
// The browser is $CHROMIUM, else /usr/bin/chromium (Debian package `chromium`). Exit codes:
// 0 no violations, 1 violations, 2 usage or set-up error (missing browser, bad file).
// Requests other than the file itself are blocked and reported as a violation of the
// post-mortem's "one self-contained file" promise.
'use strict';

const fs = require('fs');
const path = require('path');
const url = require('url');

function fail(message) {
    process.stderr.write(`check.js: ${message}\n`);
    process.exit(2);
}

const [file, screenshot] = process.argv.slice(2);
if (!file) {
    fail('usage: node check.js FILE.html [SCREENSHOT.png]');
}
if (!fs.existsSync(file)) {
    fail(`${file}: no such file`);
}

let puppeteer;
let axeSource;
try {
    puppeteer = require('puppeteer-core');
    axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
} catch (e) {
    fail(`node modules missing (${e.message}): run \`npm ci\` in ${__dirname}`);
}

const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(browserPath)) {
    fail(`no browser at ${browserPath}: install the Debian package \`chromium\` (apt-get install -y chromium) or set CHROMIUM`);
}

const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

async function main() {
    const pageUrl = url.pathToFileURL(path.resolve(file)).href;
    const browser = await puppeteer.launch({
        executablePath: browserPath,
        headless: true,
        // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    const external = [];
    try {
        const page = await browser.newPage();
        await page.setViewport({ width: 1100, height: 900 });
        await page.setRequestInterception(true);
        page.on('request', (request) => {
            const u = request.url();
            if (u === pageUrl || u.startsWith('data:')) {
                request.continue();
            } else {
                external.push(u);
                request.abort();
            }
        });
        await page.goto(pageUrl, { waitUntil: 'load' });
        await page.evaluate(axeSource);
        const results = await page.evaluate(
            (tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags } }),
            TAGS,
        );
        if (screenshot) {
            await page.screenshot({ path: screenshot, fullPage: true });
        }

        console.log(`axe-core ${results.testEngine.version}, rules tagged ${TAGS.join(', ')}: ` +
            `${results.passes.length} passed, ${results.violations.length} violated, ` +
            `${results.incomplete.length} need review, ${results.inapplicable.length} not applicable`);
        for (const v of results.violations) {
            console.log(`\nviolation: ${v.id} (${v.impact}): ${v.help}\n  ${v.helpUrl}`);
            for (const node of v.nodes) {
                console.log(`  at ${node.target.join(' ')}`);
                console.log(`    ${node.failureSummary.replace(/\n/g, '\n    ')}`);
            }
        }
        for (const r of results.incomplete) {
            console.log(`\nneeds review (not a failure): ${r.id}: ${r.help} (${r.nodes.length} element(s))`);
            for (const node of r.nodes.slice(0, 3)) {
                console.log(`  at ${node.target.join(' ')}`);
            }
        }
        for (const u of external) {
            console.log(`\nviolation: external request to ${u} (the file must be self-contained)`);
        }
        return results.violations.length + external.length;
    } finally {
        await browser.close();
    }
}

main().then(
    (violations) => process.exit(violations === 0 ? 0 : 1),
    (e) => fail(e.stack || String(e)),
);
