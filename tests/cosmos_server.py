"""Run npm ``@vercel/cosmosdb-server`` (an in-memory Cosmos DB) for the storage tests.

``CosmosServer().start()`` launches ``node node_modules/@vercel/cosmosdb-server/lib/cli.js -p
<free port> --host 127.0.0.1`` from the repo root, waits until it answers HTTPS, and ``stop()``
ends it. ``endpoint`` is ``https://127.0.0.1:<port>/`` and any ``key`` string is accepted;
``azure-cosmos`` skips certificate checks for 127.0.0.1 by itself.

Emulator gaps, and what this harness (and only this harness) does about them
---------------------------------------------------------------------------
- Reading an item that does not exist (or with the wrong partition key) answers **500**
  ``Cannot read properties of undefined`` instead of **404**: its read handler indexes into the
  missing document. ``bot/storage/cosmos.py`` does point reads and treats 404 as "absent", which
  is right for the real service, so the harness preloads a tiny script (``node -r``) that wraps
  the emulator's read handler and turns exactly that failure into the 404 Cosmos DB answers.
  Nothing else is changed; the emulator's own files are untouched.
- The change feed answers every read with all documents and then 304 for ever, so nothing
  can follow new writes. ``cosmos_shims/change_feed.js`` (also preloaded) serves change-feed
  reads as Cosmos DB documents them (LatestVersion mode: log sequence numbers, continuation in
  ``etag``, ``*`` for "from now", 304 when nothing changed); see its header.
- Its batch handler serves the JavaScript SDK's bulk format (a partition key in every
  operation) and is not atomic: the transactional batch ``azure-cosmos`` sends
  (``execute_item_batch``: ``POST .../docs`` with ``x-ms-cosmos-is-batch-request: True``,
  ``x-ms-cosmos-batch-atomic: True``, the partition key in ``x-ms-documentdb-partitionkey`` and
  a JSON array of ``{operationType, id, resourceBody, ifMatch}``) fails there with "Failed to
  parse x-ms-documentdb-partitionkey headers". The store commits the writes of a unit of work
  that share a partition as one such batch, so a second preload replaces the batch handler for
  atomic requests with the documented semantics: at most 100 operations (else 400), all in the
  header's logical partition (an item of another partition: 400), applied in order with the
  emulator's own create/upsert/replace/delete/read/patch (so ETags, 409 and 412 are its own);
  all succeed -> 200 and one ``{statusCode, requestCharge, eTag, resourceBody}`` per operation;
  one fails -> every item the batch touched is put back exactly as it was (same ``_etag``,
  ``_ts``, ``_rid``), and the answer is 207 Multi-Status with the failing operation's status
  and 424 (failed dependency) for every other, as Cosmos DB answers (``azure-cosmos`` raises
  ``CosmosBatchOperationError`` for it). Node runs the handler's work after reading the body
  without yielding, so no other request sees a batch half applied. Non-atomic (bulk) requests
  still reach the emulator's own handler.
- Its command line starts the server without keep-alive: every answer says ``connection:
  close``, so every request opens a new TCP connection and TLS handshake (in the fleet bench
  ~1,500 handshakes a minute per instance: ~3.5 ms of client CPU each, 10 % of an instance's
  time, and more in the single Node process). Cosmos DB keeps HTTP connections alive, and the
  library has the option (``keepAlive``); the last preload turns it on (last: loading the
  server module builds its route table from the handlers the other preloads replaced).
- TTL is stored but never expires anything, ``OFFSET/LIMIT`` and ``GROUP BY`` do not parse, and
  a partition-key header without a ``c.pk = `` filter in the SQL is rejected. The store uses
  none of the middle two, and always writes the ``c.pk = @pk`` filter in single-partition
  queries (also right on the real service), so there is nothing to work around; the TTL tests
  only check that ``ttl`` is written.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Self

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "node_modules" / "@vercel" / "cosmosdb-server"
CLI = PACKAGE / "lib" / "cli.js"
# Further preloads, each teaching the stand-in one documented behaviour it lacks.
SHIMS = REPO / "tests" / "cosmos_shims"
CHANGE_FEED_SHIM = SHIMS / "change_feed.js"

# Preloaded with `node -r`: runs before cli.js builds its route table, which captures the
# handler functions, so replacing the module's export here is what the routes will call. It
# also ends the server when its stdin (a pipe from this process) closes, so a test run that is
# killed outright leaves no emulator behind.
_READ_404_SHIM = r"""
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
const path = require("path");
const handler = require(path.join(process.env.COSMOSDB_SERVER_PACKAGE,
                                  "lib", "handler", "read-document.js"));
const original = handler.default;
handler.default = (account, req, res, params) => {
  try {
    return original(account, req, res, params);
  } catch (err) {
    if (err instanceof TypeError) {  // the missing document was indexed into
      res.statusCode = 404;
      return { code: "NotFound",
               message: "Entity with the specified id does not exist in the system." };
    }
    throw err;
  }
};
"""

# Preloaded with `node -r` too: the transactional batch of the docstring, for atomic requests.
_BATCH_SHIM = r"""
const path = require("path");
const lib = path.join(process.env.COSMOSDB_SERVER_PACKAGE, "lib");
const handler = require(path.join(lib, "handler", "batch-documents.js"));
const ops = require(path.join(lib, "handler", "_document-operations.js"));
const patch = require(path.join(lib, "handler", "_patch-operations.js"));
const readJson = require(path.join(lib, "json.js")).default;
const bulk = handler.default;
const isTrue = (req, name) => String(req.headers[name] || "").toLowerCase() === "true";
const MAX_OPERATIONS = 100;

function partitionOf(header) {
  try {
    const parsed = JSON.parse(header);
    return Array.isArray(parsed) && parsed.length === 1 ? parsed[0] : undefined;
  } catch (err) {
    return undefined;
  }
}

function run(collection, header, pk, op) {
  const body = op.resourceBody;
  const input = { partitionKey: header, id: op.id, resourceBody: body, ifMatch: op.ifMatch };
  const kind = String(op.operationType || "");
  if (["Create", "Upsert", "Replace"].includes(kind)) {
    if (!body || typeof body !== "object" || !body.id) {
      return { statusCode: 400, body: { message: "missing id" } };
    }
    if (collection.documents._getPartition(body) !== pk) {
      return { statusCode: 400, body: { message: "the item is not in the batch's partition" } };
    }
  }
  switch (kind) {
    case "Create": return ops.createOperation(collection, input);
    case "Upsert": return ops.upsertOperation(collection, input);
    case "Replace":
      if (op.id !== body.id) return { statusCode: 400, body: { message: "id mismatch" } };
      return ops.replaceOperation(collection, input);
    case "Delete": return ops.deleteOperation(collection, input);
    case "Read": return ops.readOperation(collection, input);
    case "Patch":
      return patch.patchOperation(collection, { ...input, operations: (body || {}).operations,
                                                condition: (body || {}).condition });
    default:
      return { statusCode: 400, body: { message: `operation '${kind}' is not supported` } };
  }
}

handler.default = async (account, req, res, params) => {
  if (!isTrue(req, "x-ms-cosmos-batch-atomic")) return bulk(account, req, res, params);
  const operations = await readJson(req);
  // From here on nothing awaits: no other request runs until the batch is applied or undone.
  const collection = account.database(params.dbId).collection(params.collId);
  if (!collection.read()) {
    res.statusCode = 404;
    return { code: "NotFound", message: "Resource Not Found" };
  }
  const header = req.headers["x-ms-documentdb-partitionkey"];
  const pk = partitionOf(header);
  if (!Array.isArray(operations) || operations.length === 0
      || operations.length > MAX_OPERATIONS || pk === undefined) {
    res.statusCode = 400;
    return { code: "BadRequest",
             message: "a batch is 1 to 100 operations on one logical partition" };
  }
  const before = new Map();  // item id -> the item as it was before the batch (null: absent)
  const results = [];
  for (let i = 0; i < operations.length; i += 1) {
    const op = operations[i] || {};
    const id = op.id || (op.resourceBody && op.resourceBody.id);
    if (id && !before.has(id)) before.set(id, collection.document(id, pk).read() || null);
    let result;
    try {
      result = run(collection, header, pk, op);
    } catch (err) {
      result = { statusCode: 400, body: { code: "BadRequest", message: err.message } };
    }
    if (result.statusCode >= 400) {
      for (const [key, was] of [...before.entries()].reverse()) {
        if (collection.document(key, pk).read()) collection.documents.delete(key, pk);
        if (was) collection.documents._set(was);
      }
      res.statusCode = 207;
      return operations.map((_, j) => (j === i
        ? { statusCode: result.statusCode, requestCharge: 0, resourceBody: result.body }
        : { statusCode: 424, requestCharge: 0 }));
    }
    const item = result.body;
    results.push({ statusCode: result.statusCode, requestCharge: 1,
                   eTag: item ? item._etag : undefined, resourceBody: item });
  }
  res.statusCode = 200;
  return results;
};
"""


# Preloaded last: the library's own keep-alive option, which its command line never sets.
_KEEP_ALIVE_SHIM = r"""
const path = require("path");
const server = require(path.join(process.env.COSMOSDB_SERVER_PACKAGE, "lib", "index.js"));
const createHttpsServer = server.createHttpsServer;
server.createHttpsServer = (opts) => createHttpsServer({ keepAlive: true, ...(opts || {}) });
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CosmosServer:
    """One emulator process; start it once per test session."""

    key = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 30.0) -> Self:
        if not CLI.exists():
            raise RuntimeError(f"{CLI} is missing: the npm packages of the repo are not installed")
        self._workdir = tempfile.TemporaryDirectory(prefix="cosmosdb-server-")
        shim = Path(self._workdir.name) / "read404.js"
        shim.write_text(_READ_404_SHIM, encoding="utf-8")
        batch = Path(self._workdir.name) / "batch.js"
        batch.write_text(_BATCH_SHIM, encoding="utf-8")
        keep_alive = Path(self._workdir.name) / "keepalive.js"
        keep_alive.write_text(_KEEP_ALIVE_SHIM, encoding="utf-8")
        self._log = open(Path(self._workdir.name) / "server.log", "wb")  # noqa: SIM115
        env = dict(os.environ, COSMOSDB_SERVER_PACKAGE=str(PACKAGE))
        self._proc = subprocess.Popen(
            ["node", "-r", str(shim), "-r", str(batch), "-r", str(CHANGE_FEED_SHIM),
             "-r", str(keep_alive), str(CLI.relative_to(REPO)), "-p", str(self.port),
             "--host", "127.0.0.1"],
            cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=self._log,
            stderr=subprocess.STDOUT)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"cosmosdb-server exited with {self._proc.returncode}:\n"
                                   f"{self.log_text()}")
            try:
                with urllib.request.urlopen(self.endpoint, context=context, timeout=2) as reply:
                    reply.read()
                return
            except urllib.error.HTTPError:
                return  # it answered: that is all we wait for
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cosmosdb-server did not answer on {self.endpoint}:\n"
                                       f"{self.log_text()}") from None
                time.sleep(0.05)

    def log_text(self) -> str:
        if self._workdir is None:
            return ""
        with contextlib.suppress(OSError):
            return (Path(self._workdir.name) / "server.log").read_text(errors="replace")
        return ""

    def stop(self) -> None:
        if self._proc is not None:
            if self._proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self._proc.stdin.close()
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=5)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
