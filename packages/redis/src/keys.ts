/**
 * Every Redis key and channel this gateway uses is built here, nowhere else.
 *
 * Layout, with P = KEY_PREFIX (default `llmgw`):
 *
 *   P:q:<queue>:…                BullMQ's own keys; BullMQ prefix is `P:q`, one queue per model,
 *                                queue name `chat.<model, URI-encoded>` (BullMQ forbids `:` in names)
 *   P:control                    pub/sub channel: cancel messages every worker listens on
 *   P:worker:<instanceId>        string (JSON WorkerInfo), PX = heartbeat TTL: a live worker
 *   P:models                     set: every model a worker registered (404 vs 503), until the api
 *                                forgets one no worker served for MODEL_FORGET_AFTER_MS
 *   P:models:seen                sorted set: model → last heartbeat (ms) of a worker serving it
 *   P:model:<model>:workers      set: instance ids that registered the model (members whose
 *                                worker key expired are dead and pruned by readers)
 *   P:apikey:<sha256 of key>     hash: user, tier, created_at, revoked, id — the key itself is never stored
 *   P:apikeys                    set: sha256 of every key (listing)
 *   P:apikeyid:<id>              string: sha256 of the key's current secret (by public id: revoke,
 *                                rotate); a rotated key's old hash stays in P:apikeys until it expires
 *   P:rl:{<user>}                sorted set: the user's requests in the current rate window
 *   P:quota:{<user>}:<YYYYMMDD>  string: tokens used or reserved by the user that UTC day
 *   P:tpm:{<user>}               hash: the user's tokens-per-minute bucket (token-bucket-take-1.lua)
 *   P:rl:key:{<keyId>}, P:quota:key:{<keyId>}:<YYYYMMDD>, P:tpm:key:{<keyId>}
 *                                the same three for a key with limits of its own (they replace its
 *                                user's: the key is counted alone)
 *   P:budget:{<keyId>}:<YYYYMM>  string: tokens used or reserved through the key that UTC month
 *                                (its monthly budget)
 *   P:adminlogin:<address>       string, PX = window: failed ADMIN_TOKEN attempts from a client
 *                                address in the current window, at /admin/login or as
 *                                `Authorization: Bearer` on /admin (one throttle for both)
 *   P:inflight:{<user>}:waiting  sorted set: the user's jobs admitted and not started, member =
 *                                job id, score = expiry (Redis ms): per-user caps, fair share
 *   P:inflight:{<user>}:running  sorted set: the user's jobs started and not ended, likewise
 *   P:cancelled:<jobId>          string, PX 1 h: the api gave up on this job (client gone, stream
 *                                declared lost, deadline): no worker may start or re-run it
 *   P:job:{<jobId>}              hash: the job's owner, wire format and request digest (resume,
 *                                idempotency, async status); PX = queue timeout + JOB_RESULT_TTL_S,
 *                                renewed with its event log
 *   P:job:{<jobId>}:events       stream: every event of the job in order (the durable event log),
 *                                MAXLEN JOB_LOG_MAX_EVENTS, PX JOB_RESULT_TTL_S after the last event
 *   P:job:{<jobId>}:ch           pub/sub channel: the job's events live (every follower subscribes)
 *   P:job:{<jobId>}:ran:<n>      string, PX 1 h (Sentinel and Cluster only): attempt n of the job
 *                                started at a backend; written with WAIT 1, so that a run BullMQ
 *                                repeats after a failover lost its move to active is refused
 *   P:q:batch.<model>:…          BullMQ's keys of a model's batch queue (the OpenAI Batch API): its
 *                                jobs run only in idle slots (apps/worker/src/batch-lane.ts)
 *   P:batch:{<batchId>}          hash: a batch's state (status, counts, files; the api's)
 *   P:batch:{<batchId>}:results  hash: field = request index, value = its BatchResult (JSON),
 *                                written once (batch-result-2.lua)
 *   P:batch:{<batchId>}:ids      list: request n's `[custom_id, model]` (JSON) at index n, for the
 *                                output file (the api's, written at creation; the batch's TTL)
 *   P:batch:{<batchId>}:lease    string, PX: the api replica finalizing the batch (SET NX)
 *   P:batches:{<user>}           sorted set: the user's batches, every score 0, ordered by id
 *                                (creation time first, like files); PX the longest a batch lives
 *   P:batches:open               sorted set: batches not yet finalized, score = expires_at (ms);
 *                                the api's sweep reads it (apps/api/src/batch/sweep.ts)
 *   P:batches:sweep              string, PX: the api replica running the sweep this second
 *   P:batch:{<batchId>}:ran:<n>  string, EX 2 d: request n reached a backend; a re-run of it
 *                                (its worker died) is refused instead, so none runs twice
 *   P:jobs:{<user>}              sorted set: the user's recent jobs, member = job id, score = ms
 *   P:idem:{<user>}:<sha256>     string, EX 24 h: `<jobId> <request digest>` of an Idempotency-Key
 *   P:usage:{<user>}:<YYYYMMDD>  hash: the user's usage ledger of one UTC day, three counters per
 *                                key × model × outcome, field `<key>|<model>|<outcome>|p|c|n`
 *                                (prompt tokens, completion tokens, jobs; usage.ts); EXPIREAT the
 *                                day's end + USAGE_RETENTION_DAYS
 *   P:usage:{<user>}:job:<jobId> string, EX 24 h: the job is in the ledger (usage-record-2.lua
 *                                counts a job once, whoever ends it and however often)
 *   P:usage:users                sorted set: user → start (ms) of the last UTC day the user has
 *                                usage on, trimmed at USAGE_RETENTION_DAYS (/admin/usage)
 *   P:file:{<fileId>}            hash: an uploaded file's metadata (user, filename, purpose, bytes,
 *                                lines, created_at, expires_at; files.ts); PXAT its expires_at
 *                                (FILE_TTL_DAYS)
 *   P:file:{<fileId>}:content    hash: the file's bytes, field `<n>` = chunk n (FILE_CHUNK_BYTES
 *                                each); PX 10 min while it is uploaded, then PXAT its expires_at
 *   P:files:{<user>}             sorted set: the user's files, every score 0, so ordered by member:
 *                                a file id starts with its creation time, so that is creation
 *                                order; PX FILE_TTL_DAYS after the user's last upload, members of
 *                                expired files removed by the next upload or list
 *
 * Keys of one job share the hash tag `{<jobId>}` and keys of one user `{<user>}`: on Redis
 * Cluster each group lives in one slot, so a pipeline or script over one group never crosses slots.
 *
 * On Redis Cluster (`createKeys(prefix, { cluster: true })`, REDIS_CLUSTER_NODES), two more groups
 * get a hash tag, and so a slot, of their own:
 *
 *   P:q:{chat.<model>}:…         each model's BullMQ queue, under its own tag: BullMQ's scripts
 *                                touch one queue's keys only, and the queues spread over the masters
 *                                (its batch queue likewise, `P:q:{batch.<model>}`)
 *   P:{P}:…                      the deployment's global keys (control, worker, models,
 *                                models:seen, model:…:workers, apikey:…, apikeys, adminlogin:…,
 *                                usage:users):
 *                                one slot, so a worker's registration (MULTI), the models MGET and
 *                                model-forget-3.lua stay within it
 *
 * and job channels use sharded pub/sub (SPUBLISH/SSUBSCRIBE, routed by the channel's `{<jobId>}`
 * slot), so a publish counts the followers that exist. Cancellations go on the plain control
 * channel, which a Cluster broadcasts to every node, so they reach every worker. The slots:
 * a job's keys and channel {<jobId>}; a user's {<user>}; a model's queue {chat.<model>}; the
 * rest {P}; a key's limits and budget {<keyId>}; `P:cancelled:<jobId>` is a key alone (one
 * command each). The usage ledger is the user's too ({<user>}): a job's marker and the day's
 * counters it guards are in one slot, so usage-record-2.lua sets one and increments the other in
 * one step; `P:usage:users`, in {P}, is written after it, on its own (it is idempotent). A file's
 * keys share its own slot, {<fileId>}: its metadata and the TTL of its content are set in one
 * MULTI, and a 200 MB file sits on one node; its place in the user's list `P:files:{<user>}` is in
 * the user's slot, written after it (a list skips and removes a member whose file is gone).
 *
 * A test gives each run its own prefix (`test-<uuid>`), so its keys and channels never meet
 * anybody else's on a shared Redis.
 */
export interface Keys {
  readonly prefix: string;
  /** Prefix handed to BullMQ (`prefix` option of Queue and Worker). */
  readonly bullPrefix: string;
  /** BullMQ queue name of a model's queue. */
  queueName(model: string): string;
  /** Inverse of {@link queueName}; undefined for a queue that is not a chat queue. */
  modelOfQueue(queueName: string): string | undefined;
  /** BullMQ queue name of a model's batch queue (idle slots only). */
  batchQueueName(model: string): string;
  batch(batchId: string): string;
  batchResults(batchId: string): string;
  batchRan(batchId: string, index: number): string;
  /** Request n's `[custom_id, model]` at index n (the output file's). */
  batchIds(batchId: string): string;
  /** The finalizing replica's lease. */
  batchLease(batchId: string): string;
  /** The user's batches, in creation order. */
  userBatches(userId: string): string;
  /** Batches not finalized yet, by expires_at. */
  readonly openBatches: string;
  /** The sweep's lease: one replica sweeps at a time. */
  readonly batchSweepLease: string;
  readonly controlChannel: string;
  worker(instanceId: string): string;
  readonly models: string;
  readonly modelsSeen: string;
  modelWorkers(model: string): string;
  apiKey(sha256: string): string;
  readonly apiKeys: string;
  apiKeyId(id: string): string;
  rateLimit(userId: string): string;
  quota(userId: string, day: string): string;
  /** Tokens per minute of a user, or of a key with limits of its own. */
  tokensPerMinute(scope: LimitScope): string;
  keyRateLimit(keyId: string): string;
  keyQuota(keyId: string, day: string): string;
  budget(keyId: string, month: string): string;
  adminLoginFailures(address: string): string;
  /** The user's in-flight jobs in one state (see inflight.ts). */
  inflight(userId: string, state: 'waiting' | 'running'): string;
  cancelled(jobId: string): string;
  job(jobId: string): string;
  jobEvents(jobId: string): string;
  jobChannel(jobId: string): string;
  jobAttempt(jobId: string, attempt: number): string;
  userJobs(userId: string): string;
  idempotency(userId: string, keySha256: string): string;
  /** The user's usage ledger of one UTC day (`YYYYMMDD`). */
  usage(userId: string, day: string): string;
  /** Marks a job as counted in its user's ledger. */
  usageCounted(userId: string, jobId: string): string;
  /** Every user with usage, by the last day they have some. */
  readonly usageUsers: string;
  /** An uploaded file's metadata (`fileId` is a checked `file-…` id: no braces). */
  file(fileId: string): string;
  /** Its bytes, in chunks. */
  fileContent(fileId: string): string;
  /** The user's files, in creation order. */
  userFiles(userId: string): string;
}

/** Whose limits a counter holds: a user's (every key of the user), or one key's own. */
export type LimitScope = { user: string } | { key: string };

const QUEUE_PREFIX = 'chat.';
const BATCH_QUEUE_PREFIX = 'batch.';

export function createKeys(prefix: string, opts: { cluster?: boolean } = {}): Keys {
  const cluster = opts.cluster === true;
  if (cluster && /[{}]/.test(prefix)) {
    throw new Error(
      `KEY_PREFIX '${prefix}' has braces: on Redis Cluster the gateway sets the hash tags itself`,
    );
  }
  // The global keys' group: one slot of their own on a Cluster, unchanged otherwise.
  const g = cluster ? `${prefix}:{${prefix}}` : prefix;
  return {
    prefix,
    bullPrefix: `${prefix}:q`,
    queueName: (model) =>
      cluster
        ? `{${QUEUE_PREFIX}${encodeURIComponent(model)}}`
        : `${QUEUE_PREFIX}${encodeURIComponent(model)}`,
    modelOfQueue: (raw) => {
      const name = cluster && raw.startsWith('{') && raw.endsWith('}') ? raw.slice(1, -1) : raw;
      return name.startsWith(QUEUE_PREFIX) ? decodeURIComponent(name.slice(QUEUE_PREFIX.length)) : undefined;
    },
    batchQueueName: (model) =>
      cluster
        ? `{${BATCH_QUEUE_PREFIX}${encodeURIComponent(model)}}`
        : `${BATCH_QUEUE_PREFIX}${encodeURIComponent(model)}`,
    batch: (batchId) => `${prefix}:batch:{${batchId}}`,
    batchResults: (batchId) => `${prefix}:batch:{${batchId}}:results`,
    batchRan: (batchId, index) => `${prefix}:batch:{${batchId}}:ran:${index}`,
    batchIds: (batchId) => `${prefix}:batch:{${batchId}}:ids`,
    batchLease: (batchId) => `${prefix}:batch:{${batchId}}:lease`,
    userBatches: (userId) => `${prefix}:batches:{${encodeURIComponent(userId)}}`,
    openBatches: `${g}:batches:open`,
    batchSweepLease: `${g}:batches:sweep`,
    controlChannel: `${g}:control`,
    worker: (instanceId) => `${g}:worker:${instanceId}`,
    models: `${g}:models`,
    modelsSeen: `${g}:models:seen`,
    modelWorkers: (model) => `${g}:model:${encodeURIComponent(model)}:workers`,
    apiKey: (sha256) => `${g}:apikey:${sha256}`,
    apiKeys: `${g}:apikeys`,
    apiKeyId: (id) => `${g}:apikeyid:${encodeURIComponent(id)}`,
    // The user id is a hash tag: on Redis Cluster a user's keys share a slot.
    rateLimit: (userId) => `${prefix}:rl:{${encodeURIComponent(userId)}}`,
    quota: (userId, day) => `${prefix}:quota:{${encodeURIComponent(userId)}}:${day}`,
    tokensPerMinute: (scope) =>
      'key' in scope
        ? `${prefix}:tpm:key:{${encodeURIComponent(scope.key)}}`
        : `${prefix}:tpm:{${encodeURIComponent(scope.user)}}`,
    keyRateLimit: (keyId) => `${prefix}:rl:key:{${encodeURIComponent(keyId)}}`,
    keyQuota: (keyId, day) => `${prefix}:quota:key:{${encodeURIComponent(keyId)}}:${day}`,
    budget: (keyId, month) => `${prefix}:budget:{${encodeURIComponent(keyId)}}:${month}`,
    adminLoginFailures: (address) => `${g}:adminlogin:${encodeURIComponent(address)}`,
    inflight: (userId, state) => `${prefix}:inflight:{${encodeURIComponent(userId)}}:${state}`,
    cancelled: (jobId) => `${prefix}:cancelled:${jobId}`,
    job: (jobId) => `${prefix}:job:{${jobId}}`,
    jobEvents: (jobId) => `${prefix}:job:{${jobId}}:events`,
    jobChannel: (jobId) => `${prefix}:job:{${jobId}}:ch`,
    jobAttempt: (jobId, attempt) => `${prefix}:job:{${jobId}}:ran:${attempt}`,
    userJobs: (userId) => `${prefix}:jobs:{${encodeURIComponent(userId)}}`,
    idempotency: (userId, sha) => `${prefix}:idem:{${encodeURIComponent(userId)}}:${sha}`,
    usage: (userId, day) => `${prefix}:usage:{${encodeURIComponent(userId)}}:${day}`,
    usageCounted: (userId, jobId) => `${prefix}:usage:{${encodeURIComponent(userId)}}:job:${jobId}`,
    usageUsers: `${g}:usage:users`,
    file: (fileId) => `${prefix}:file:{${fileId}}`,
    fileContent: (fileId) => `${prefix}:file:{${fileId}}:content`,
    userFiles: (userId) => `${prefix}:files:{${encodeURIComponent(userId)}}`,
  };
}

/** The UTC day (`YYYYMMDD`) of a key built by `quota()`; undefined for any other key. */
export function quotaKeyDay(key: string): string | undefined {
  return /:quota:(?:key:)?\{[^}]*\}:(\d{8})$/.exec(key)?.[1];
}

/** The UTC month (`YYYYMM`) of a key built by `budget()`; undefined for any other key. */
export function budgetKeyMonth(key: string): string | undefined {
  return /:budget:\{[^}]*\}:(\d{6})$/.exec(key)?.[1];
}
