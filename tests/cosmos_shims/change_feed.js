// Preloaded into @vercel/cosmosdb-server (`node -r`): a change feed that follows writes.
//
// The stand-in answers every change-feed read (header `a-im: Incremental feed`) with all
// documents and then 304 for ever, so a reader can never follow new writes. This shim serves
// those reads as Cosmos DB documents them, in LatestVersion mode: each successful create,
// upsert, replace or patch (batches included) gets the next log sequence number (`_lsn`) of its
// collection; a read returns the documents changed after the continuation in `If-None-Match`
// (absent: from the beginning; `*`: from now), each once at its latest version and in `_lsn`
// order, up to `x-ms-max-item-count`, with the continuation for the next read in `etag`, or
// 304 when nothing changed. Deleted documents leave the feed (the real feed never shows
// deletes). It assumes the partition key path `/pk`, as every Switchboard container has, and
// one partition key range, as the stand-in has. Nothing else is changed.
"use strict";
const http = require("http");
const https = require("https");

const DOCS = /^\/dbs\/([^/]+)\/colls\/([^/]+)\/docs\/?(?:([^/]+)\/?)?$/;
const feeds = new Map(); // "db/coll" -> { lsn, items: Map(key -> doc with _lsn) }

function feedOf(db, coll) {
  const name = `${decodeURIComponent(db)}/${decodeURIComponent(coll)}`;
  let feed = feeds.get(name);
  if (!feed) {
    feed = { lsn: 0, items: new Map() };
    feeds.set(name, feed);
  }
  return feed;
}

const keyOf = (doc) => `${JSON.stringify(doc.pk)}\u0000${doc.id}`;

function record(feed, doc) {
  if (!doc || typeof doc !== "object" || typeof doc.id !== "string") return;
  feed.lsn += 1;
  const key = keyOf(doc);
  feed.items.delete(key); // re-inserted at the end: Map order is _lsn order
  feed.items.set(key, { ...doc, _lsn: feed.lsn });
}

function forget(feed, id, pkHeader) {
  let pk;
  try {
    pk = JSON.parse(pkHeader || "[]")[0];
  } catch (err) {
    return;
  }
  feed.items.delete(`${JSON.stringify(pk)}\u0000${decodeURIComponent(id)}`);
}

function follow(req, res, feed, docId) {
  const end = res.end.bind(res);
  const chunks = [];
  res.end = (chunk, ...rest) => {
    if (chunk) chunks.push(Buffer.from(chunk));
    if (res.statusCode >= 200 && res.statusCode < 300) {
      if (req.method === "DELETE") {
        forget(feed, docId, req.headers["x-ms-documentdb-partitionkey"]);
      } else {
        let body = null;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch (err) {
          body = null;
        }
        if (Array.isArray(body)) { // a batch: every operation succeeded
          for (const op of body) {
            if (op && op.statusCode < 300 && op.resourceBody) record(feed, op.resourceBody);
          }
        } else {
          record(feed, body);
        }
      }
    }
    return end(chunk, ...rest);
  };
}

function serve(req, res, feed) {
  const match = (req.headers["if-none-match"] || "").replace(/"/g, "");
  const limit = parseInt(req.headers["x-ms-max-item-count"] || "100", 10);
  let since = 0;
  if (match === "*") since = feed.lsn;
  else if (match) since = parseInt(match, 10) || 0;
  let after = 0;
  if (req.headers["if-modified-since"]) {
    after = Date.parse(req.headers["if-modified-since"]) / 1000;
  }
  let pk;
  if (req.headers["x-ms-documentdb-partitionkey"]) {
    try {
      pk = JSON.stringify(JSON.parse(req.headers["x-ms-documentdb-partitionkey"])[0]);
    } catch (err) {
      pk = undefined;
    }
  }
  const found = [];
  for (const doc of feed.items.values()) {
    if (doc._lsn <= since || (after && doc._ts < after)) continue;
    if (pk !== undefined && JSON.stringify(doc.pk) !== pk) continue;
    found.push(doc);
    if (limit > 0 && found.length >= limit) break;
  }
  const next = found.length ? found[found.length - 1]._lsn : Math.max(since, 0);
  res.setHeader("etag", `"${next}"`);
  res.setHeader("content-type", "application/json");
  res.setHeader("x-ms-request-charge", "1");
  res.setHeader("x-ms-activity-id", require("crypto").randomUUID());
  if (!found.length) {
    res.statusCode = 304;
    res.end();
    return;
  }
  res.statusCode = 200;
  res.end(JSON.stringify({ _rid: "", Documents: found, _count: found.length }));
}

function wrap(listener) {
  return (req, res) => {
    const path = (req.url || "").split("?")[0];
    const docs = DOCS.exec(path);
    if (docs) {
      const feed = feedOf(docs[1], docs[2]);
      if (req.method === "GET" && !docs[3] && req.headers["a-im"]) {
        serve(req, res, feed);
        return;
      }
      if (req.method !== "GET") follow(req, res, feed, docs[3]);
    }
    listener(req, res);
  };
}

for (const mod of [http, https]) {
  const createServer = mod.createServer;
  mod.createServer = (opts, listener) => {
    if (typeof opts === "function") return createServer.call(mod, wrap(opts));
    return createServer.call(mod, opts, listener && wrap(listener));
  };
}
