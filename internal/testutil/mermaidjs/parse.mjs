// Reads a JSON array of Mermaid diagrams on stdin and writes, for each,
// {type, config} or {error}: what mermaid.parse (the real grammar) says.
// mermaid needs a DOM even to parse (DOMPurify sanitises labels): jsdom
// provides one; parse does no layout, so no browser is needed.
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;

const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

let input = '';
for await (const chunk of process.stdin) input += chunk;
const out = [];
for (const text of JSON.parse(input)) {
  try {
    const r = await mermaid.parse(text);
    out.push({ type: r.diagramType, config: r.config || {} });
  } catch (e) {
    out.push({ error: String((e && e.message) || e) });
  }
}
process.stdout.write(JSON.stringify(out));
