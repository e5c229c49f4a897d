// Calls every route of spoold through a client generated from its
// /openapi.json (openapi-typescript types, openapi-fetch calls), so that
// `tsc --strict` fails when the document cannot describe what a client
// needs: a missing route, parameter or header, an optional field that is
// always there, a payload that is not an open object. scripts/ts-check.sh
// generates ./spool.d.ts and type-checks this file; it is never run.
import createClient from "openapi-fetch";
import type { components, paths } from "./spool";

type Schemas = components["schemas"];
type Thread = Schemas["Thread"];

const api = createClient<paths>({ baseUrl: "http://127.0.0.1:7878", headers: { Authorization: "Bearer t" } });

function must<T>(r: { data?: T; error?: unknown }): T {
  if (r.data === undefined) throw new Error(JSON.stringify(r.error));
  return r.data;
}

// Fields every Thread has, typed without undefined.
function describe(t: Thread): string {
  const parts: (string | number | boolean)[] = [
    t.id, t.rollout_path, t.created_at, t.updated_at, t.cwd, t.source, t.originator, t.cli_version,
    t.model_provider, t.name, t.preview, t.archived, t.fork_user_message, t.fork_offset, t.line_count,
    t.user_message_count, t.indexed_size,
  ];
  const optional: (string | number | undefined)[] = [t.parent_id, t.archived_at, t.git_commit, t.git_branch, t.git_origin];
  return parts.concat(optional.filter((v): v is string | number => v !== undefined)).join(" ");
}

export async function everyRoute(): Promise<void> {
  const health = must(await api.GET("/healthz"));
  const status: string = health.status;
  await api.GET("/metrics", { parseAs: "text" });
  must(await api.GET("/openapi.json"));

  // Threads.
  const created = must(await api.POST("/v1/threads", {
    body: { cwd: "/p", source: { custom: "atlas" }, name: "n", git: { commit_hash: "abc", branch: "main" } },
  }));
  const other = must(await api.POST("/v1/threads", { body: { source: "cli" } }));
  const id: string = created.id;
  const params = { path: { id } };
  const page = must(await api.GET("/v1/threads", {
    params: { query: { limit: 10, sort: "created", order: "asc", archived: "all", cwd: "/p", q: "x" } },
  }));
  const threads: Thread[] = page.threads;
  const nextCursor: string | undefined = page.next_cursor;
  must(await api.GET("/v1/threads/{id}", { params }));
  must(await api.PATCH("/v1/threads/{id}", { params, body: { name: "renamed" } }));

  // Appends: a payload is any object; safe-write headers.
  const appended = must(await api.POST("/v1/threads/{id}/items", {
    params: { ...params, header: { "Expected-Size": created.indexed_size, "Idempotency-Key": "k1" } },
    body: { type: "response_item", payload: { type: "message", role: "user", content: [{ type: "input_text", text: "hi" }] } },
  }));
  const offsets: number[] = appended.offsets;
  const size: number = appended.thread.indexed_size;
  must(await api.POST("/v1/threads/{id}/items", {
    params,
    body: { items: [{ type: "event_msg", payload: { type: "anything", nested: { deep: [1, 2] } }, timestamp: "2026-01-01T00:00:00.000Z" }] },
  }));
  const conflict = await api.POST("/v1/threads/{id}/items", {
    params: { ...params, header: { "Expected-Size": 1 } },
    body: { type: "event_msg", payload: {} },
  });
  if (conflict.error) {
    const code: string = conflict.error.error.code;
    const actual: number | undefined = conflict.error.error.size;
    console.log(code, actual);
  }

  // Reads, follow, turns.
  await api.GET("/v1/threads/{id}/items", { params: { ...params, query: { from_user_message: 0 } }, parseAs: "stream" });
  await api.GET("/v1/threads/{id}/items", {
    params: { ...params, query: { follow: "1", from_offset: size }, header: { "Last-Event-ID": size } },
    parseAs: "stream",
  });
  const turns = must(await api.GET("/v1/threads/{id}/turns", { params: { ...params, query: { view: "full", limit: 5, order: "desc" } } }));
  const turnsCursor: string | undefined = turns.next_cursor;
  await api.GET("/v1/threads/{id}/turns/{k}", { params: { path: { id, k: 0 } }, parseAs: "stream" });
  await api.GET("/v1/threads/{id}/turns/by-id/{turn_id}", { params: { path: { id, turn_id: "t" } }, parseAs: "stream" });

  // Forks and lineage.
  const fork = must(await api.POST("/v1/threads/{id}/fork", { params, body: { before_user_message: 0, name: "f", cwd: "/q" } }));
  const parent: string | undefined = fork.parent_id;
  must(await api.POST("/v1/threads/{id}/fork", { params, body: { last_turn_id: "t", mode: "reference" } }));
  const reverted: Thread = must(await api.POST("/v1/threads/{id}/revert", { params, body: { before_turn_id: "t" } }));
  const ancestors = must(await api.GET("/v1/threads/{id}/ancestors", { params: { path: { id: fork.id } } }));
  const depth: number = ancestors.ancestors[0].depth;
  const descendants = must(await api.GET("/v1/threads/{id}/descendants", { params }));
  const tree = must(await api.GET("/v1/threads/{id}/tree", { params }));
  const root: Thread = tree.root;

  // Search and events.
  const hits = must(await api.GET("/v1/search", {
    params: { query: { q: '"hi there" OR hi*', limit: 5, archived: "false", cwd: "/p", source: "cli", thread: id } },
  }));
  const hitName: string = hits.hits[0].name;
  const hitsCursor: string | undefined = hits.next_cursor;
  await api.GET("/v1/events", { parseAs: "stream" });
  const event: Schemas["Event"] = { seq: 1, type: "appended", thread_id: id, size, offsets };

  // Archive, unarchive, delete.
  must(await api.POST("/v1/threads/{id}/archive", { params }));
  must(await api.POST("/v1/threads/{id}/unarchive", { params }));
  await api.DELETE("/v1/threads/{id}", { params: { path: { id: other.id } } });

  console.log(status, threads.map(describe), nextCursor, offsets, turnsCursor, parent, depth,
    descendants.descendants.length, describe(root), describe(reverted), hitName, hitsCursor, event.seq);
}
