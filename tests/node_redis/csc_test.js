// node-redis's client-side cache (RESP3, CLIENT TRACKING) against a statekv
// cluster: a client caching through one node must not keep serving a value
// that was overwritten through another node. Run by tests/cache_tier_test.cc:
//   node csc_test.js <port of the caching client's node> <port of the writer's node> key...
// Prints "ok: <rounds> rounds, <hits> hits, longest wait <ms> ms" and exits 0.
'use strict';
const {createClient, BasicClientSideCache} = require('redis');

const [port, writerPort, ...keys] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const cache = new BasicClientSideCache({ttl: 0, maxEntries: 0, evictPolicy: 'LRU'});
  const reader = createClient({
    RESP: 3,
    clientSideCache: cache,
    socket: {host: '127.0.0.1', port: Number(port), reconnectStrategy: false},
  });
  const writer = createClient({
    socket: {host: '127.0.0.1', port: Number(writerPort), reconnectStrategy: false},
  });
  reader.on('error', (e) => {
    console.error('reader:', e);
    process.exit(2);
  });
  writer.on('error', (e) => {
    console.error('writer:', e);
    process.exit(2);
  });
  await reader.connect();
  await writer.connect();
  let rounds = 0;
  let longest = 0;
  for (let round = 0; round < 10; round++) {
    for (const key of keys) {
      const want = `v${round}`;
      await writer.set(key, want);
      const written = Date.now();
      // The invalidation travels from the key's owner to the reader's node
      // after the write is acknowledged: wait for it, within a bound.
      for (;;) {
        const got = await reader.get(key);
        if (got === want) break;
        if (Date.now() - written > 2000) {
          throw new Error(
              `${key}: still ${got} 2 s after ${want} was written through another node`);
        }
        await sleep(2);
      }
      longest = Math.max(longest, Date.now() - written);
      // Cached now: the next read is a hit, and the value stays right.
      const hits = cache.stats().hitCount;
      const again = await reader.get(key);
      if (again !== want) throw new Error(`${key}: read ${again} after ${want}`);
      if (cache.stats().hitCount !== hits + 1) {
        throw new Error(`${key}: the second read was not served from the client's cache`);
      }
      rounds++;
    }
  }
  console.log(`ok: ${rounds} rounds, ${cache.stats().hitCount} hits, longest wait ${longest} ms`);
  await reader.quit();
  await writer.quit();
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
