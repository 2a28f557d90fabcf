// ioredis's Cluster client against a statekv cluster whose default keyspace is
// partitioned by slots. Run by tests/routing_test.cc:
//
//   node cluster_test.js PORT [EXPECTED_MASTERS]
//   node cluster_test.js PORT replicas PREFIX
//
// The client learns the topology from CLUSTER SLOTS on the node at PORT, then
// sends every command straight to the node that owns the key's slot, as it
// would to Redis Cluster. With `replicas`, a second client reads keys under
// PREFIX from the replicas CLUSTER SLOTS lists (scaleReads 'slave': ioredis
// sends READONLY to them first). Exit status 0 means every check held;
// anything else prints what did not, on stderr.
'use strict';

const Redis = require('ioredis');

const port = Number(process.argv[2]);
const replicaReads = process.argv[3] === 'replicas';
const replicaPrefix = replicaReads ? process.argv[4] : '';
const expectedMasters = replicaReads || process.argv[3] === undefined ? 0 : Number(process.argv[3]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node cluster_test.js PORT [EXPECTED_MASTERS]');
  process.exit(2);
}

// A hung cluster must fail the test, not stall it.
let step = 'starting';
const watchdog = setTimeout(() => {
  console.error(`timed out after 20 s, at: ${step}`);
  process.exit(3);
}, 20000);

const failures = [];
function expectEqual(what, got, want) {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    failures.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

// Writes through one client, reads through another that reads from replicas.
async function readFromReplicas() {
  const options = {
    clusterRetryStrategy: () => null,
    redisOptions: {connectTimeout: 2000, maxRetriesPerRequest: 1},
  };
  const writer = new Redis.Cluster([{host: '127.0.0.1', port}], options);
  const reader = new Redis.Cluster([{host: '127.0.0.1', port}], {...options, scaleReads: 'slave'});
  for (const c of [writer, reader]) {
    c.on('error', (err) => failures.push(`client error: ${err.message}`));
  }
  // Listened for at once: a client ready before the other is not missed.
  const ready = [writer, reader].map(
      (c) => new Promise((resolve, reject) => {
        c.once('ready', resolve);
        c.once('end', () => reject(new Error('connection ended before ready')));
      }));
  try {
    step = 'waiting for both clients to be ready';
    await Promise.all(ready);
    // Every node leads some slot ranges and holds replicas of the others, so
    // ioredis keeps one connection a node (a master's: it sends no READONLY
    // itself) and reads each key at a node listed after the range's first.
    // READONLY as a client of Redis replicas sends it (redis-py's
    // read_from_replicas on every connection, refusing a node that fails it).
    const all = reader.nodes('all');
    if (all.length !== 3) failures.push(`nodes seen by the client: ${all.length}, want 3`);
    for (const node of all) {
      step = `READONLY on ${node.options.port}`;
      expectEqual(step, await node.readonly(), 'OK');
    }
    const listed = new Set();
    for (let slot = 0; slot < 16384; ++slot) listed.add((reader.slots[slot] || []).length);
    expectEqual('nodes listed for each slot range', [...listed], [3]);
    const keys = [];
    for (let i = 0; i < 100; ++i) keys.push(`${replicaPrefix}key:${i}`);
    for (const key of keys) {
      step = `SET ${key}`;
      expectEqual(step, await writer.set(key, `v-${key}`), 'OK');
    }
    for (const key of keys) {
      step = `GET ${key} from a replica`;
      expectEqual(step, await reader.get(key), `v-${key}`);
    }
  } catch (err) {
    failures.push(`unexpected error: ${err && err.stack ? err.stack : err}`);
  } finally {
    writer.disconnect();
    reader.disconnect();
  }
}

async function main() {
  if (replicaReads) return readFromReplicas();
  const cluster = new Redis.Cluster([{ host: '127.0.0.1', port }], {
    // Fail fast instead of reconnecting forever: a broken node is a failure here.
    clusterRetryStrategy: () => null,
    redisOptions: { connectTimeout: 2000, maxRetriesPerRequest: 1 },
  });
  cluster.on('error', (err) => failures.push(`client error: ${err.message}`));
  try {
    await new Promise((resolve, reject) => {
      cluster.once('ready', resolve);
      cluster.once('end', () => reject(new Error('connection ended before ready')));
    });

    const masters = cluster.nodes('master');
    if (expectedMasters > 0) expectEqual('masters seen by the client', masters.length, expectedMasters);

    // 200 keys, each written to and read from the node that owns its slot.
    const keys = [];
    for (let i = 0; i < 200; ++i) keys.push(`ioredis:key:${i}`);
    for (const key of keys) {
      expectEqual(`SET ${key}`, await cluster.set(key, `value-of-${key}`), 'OK');
    }
    for (const key of keys) {
      expectEqual(`GET ${key}`, await cluster.get(key), `value-of-${key}`);
    }

    // The client's own slot table covers every slot and spreads them over
    // the masters, so the writes above went to more than one node.
    const owners = new Set();
    let covered = 0;
    for (let slot = 0; slot < 16384; ++slot) {
      const nodes = cluster.slots[slot];
      if (nodes && nodes.length > 0) {
        ++covered;
        owners.add(nodes[0]);
      }
    }
    expectEqual('slots covered by the client\'s slot table', covered, 16384);
    if (expectedMasters > 0) expectEqual('distinct slot owners', owners.size, expectedMasters);

    // A hash tag keeps several keys in one slot, so MSET/MGET are single-slot.
    const tagged = ['{user42}:name', '{user42}:email', '{user42}:city'];
    expectEqual('MSET with a hash tag',
                await cluster.mset(tagged[0], 'ada', tagged[1], 'ada@example.org', tagged[2], 'london'),
                'OK');
    expectEqual('MGET with a hash tag', await cluster.mget(...tagged, '{user42}:missing'),
                ['ada', 'ada@example.org', 'london', null]);

    expectEqual('DEL with a hash tag', await cluster.del(...tagged), 3);
    expectEqual('GET after DEL', await cluster.get(tagged[0]), null);
  } catch (err) {
    failures.push(`unexpected error: ${err && err.stack ? err.stack : err}`);
  } finally {
    cluster.disconnect();
  }
}

main().then(() => {
  clearTimeout(watchdog);
  if (failures.length > 0) {
    for (const f of failures) console.error(f);
    process.exit(1);
  }
  console.log(
      replicaReads ? 'ok: 100 keys read from replicas through ioredis Cluster' :
                     'ok: 200 keys and a hash-tagged MGET through ioredis Cluster');
  process.exit(0);
});
