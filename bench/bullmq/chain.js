// bench/bullmq/chain.js - the BullMQ peer of rampart's pipeline (bench/all.sh):
// N chains of 5 steps on one queue, one worker at concurrency C; each step's
// job, when processed, adds the chain's next step. The clock runs from the
// worker's start to the last chain's fifth step. BullMQ keeps its jobs in
// Redis only (no PostgreSQL, nothing fsynced): it is the "queue alone" peer.
//
//   node chain.js REDIS_PORT N CONCURRENCY   -> one JSON line on stdout
'use strict';
const { Queue, Worker } = require('bullmq');

const port = Number(process.argv[2]);
const n = Number(process.argv[3] || 20000);
const concurrency = Number(process.argv[4] || 50);
const STEPS = 5;
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
const opts = { removeOnComplete: true, removeOnFail: 1000 };

async function main() {
	const name = 'chain' + Date.now();
	const queue = new Queue(name, { connection });
	await queue.waitUntilReady();
	// Seed the first step of every chain before any worker runs (as rampart's
	// pipeline bench queues the first jobs before its workers start).
	for (let i = 0; i < n; i += 1000) {
		const batch = [];
		for (let j = i; j < Math.min(n, i + 1000); j++) {
			batch.push({ name: 'step', data: { chain: j, step: 1 }, opts });
		}
		await queue.addBulk(batch);
	}
	let finished = 0;
	let steps = 0;
	let t0 = 0;
	let resolveDone;
	const done = new Promise((r) => { resolveDone = r; });
	const timeline = [];
	let tick;
	const worker = new Worker(name, async (job) => {
		steps++;
		if (job.data.step < STEPS) {
			await queue.add('step', { chain: job.data.chain, step: job.data.step + 1 }, opts);
		} else if (++finished === n) {
			resolveDone();
		}
	}, { connection, concurrency, autorun: false });
	t0 = process.hrtime.bigint();
	tick = setInterval(() => {
		timeline.push([Number(process.hrtime.bigint() - t0) / 1e9, finished]);
	}, 500);
	worker.run();
	await done;
	const secs = Number(process.hrtime.bigint() - t0) / 1e9;
	clearInterval(tick);
	await worker.close();
	await queue.obliterate({ force: true });
	await queue.close();
	process.stdout.write(JSON.stringify({
		bullmq: require('bullmq/package.json').version,
		chains: n, steps_per_chain: STEPS, concurrency, seconds: secs,
		chains_per_s: n / secs, steps_per_s: steps / secs, timeline,
	}) + '\n');
}

main().catch((e) => {
	console.error(e);
	process.exit(1);
});
