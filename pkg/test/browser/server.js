// A tiny static server on 127.0.0.1 for the browser tests and the bench: serves pkg/ at
// /pkg/ and coffre-core's test vectors at /testdata/ (with /testdata/index.json listing
// them). Node's http module only.
import { createServer } from 'node:http';
import { readFile, readdir } from 'node:fs/promises';
import { extname, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const PKG = fileURLToPath(new URL('../../', import.meta.url));
const TESTDATA = fileURLToPath(new URL('../../../crates/coffre-core/tests/testdata/', import.meta.url));

const TYPES = {
  '.js': 'text/javascript',
  '.html': 'text/html; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.ts': 'text/plain',
  '.mjs': 'text/javascript',
};

async function listVectors() {
  const out = [];
  for (const dir of ['cctv', 'coffre']) {
    for (const name of (await readdir(TESTDATA + dir)).sort()) if (!name.includes('.')) out.push(`${dir}/${name}`);
  }
  return out;
}

/**
 * Starts the server on a free port; resolves to { url, close }. `allowNodeModules` also
 * serves pkg/node_modules/ (the bench page loads the libraries it compares with).
 */
export function startServer({ allowNodeModules = false } = {}) {
  const server = createServer(async (req, res) => {
    try {
      const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
      let file;
      if (path === '/testdata/index.json') {
        res.writeHead(200, { 'content-type': TYPES['.json'] });
        return res.end(JSON.stringify(await listVectors()));
      } else if (path.startsWith('/pkg/')) file = PKG + path.slice(5);
      else if (path.startsWith('/testdata/')) file = TESTDATA + path.slice(10);
      const root = file && (file.startsWith(PKG) ? PKG : TESTDATA);
      if (!file || !normalize(file).startsWith(root) || (!allowNodeModules && normalize(file).includes(`${sep}node_modules${sep}`))) {
        res.writeHead(404);
        return res.end();
      }
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}
