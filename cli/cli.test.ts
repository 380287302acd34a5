/**
 * The CLI against a running local instance: boots a fresh local stack (scripts/lib/stack.ts:
 * migrations, `wrangler dev` on a free port), then runs `cli/shipyard.mjs` as a user would, with
 * stdin a pipe (not a terminal), and checks output and exit codes. `npm run test:cli`; not part of
 * `npm test` because it boots wrangler dev (~10 s) and needs the ports.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ADMIN_TOKEN, type Stack, startStack } from "../scripts/lib/stack.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SHIM = path.join(ROOT, "cli", "shipyard.mjs");
const SAMPLE = path.join(ROOT, "examples", "sample-tenant");
const STORAGE = path.join(ROOT, "examples", "storage-tenant");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let stack: Stack;

/** Runs the CLI with stdin as a pipe (non-interactive), against the test stack. */
function shipyard(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SHIM, ...args], {
      cwd: ROOT,
      env: { ...process.env, SHIPYARD_URL: stack.url, SHIPYARD_ADMIN_TOKEN: ADMIN_TOKEN, ...env },
      stdio: ["pipe", "pipe", "pipe"],
      timeout: timeoutMs,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.stdin.end();
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function explain(run: Run): string {
  return `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
}

function json(run: Run): unknown {
  assert.equal(run.code, 0, explain(run));
  return JSON.parse(run.stdout);
}

/** Polls `probe` until it returns a value, for effects that go through a queue. */
async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

before(async () => {
  stack = await startStack({ name: "cli-test", say: () => undefined });
});

after(async () => {
  await stack?.stop();
});

void describe("shipyard CLI against a local instance", { timeout: 110_000 }, () => {
  const project = `cli-${crypto.randomUUID().slice(0, 8)}`;

  void it("usage mistakes exit 2 with a message; --help exits 0", async () => {
    const help = await shipyard(["--help"]);
    assert.equal(help.code, 0, explain(help));
    assert.match(help.stdout, /dlq redrive/);
    assert.match(help.stdout, /audit export/);
    for (const args of [
      [],
      ["bogus"],
      ["dlq"],
      ["deploy"],
      ["projects", "info"],
      ["projects", "ls", "--nope"],
      ["dlq", "ls", "--limit", "0"],
      ["audit", "export", "--format", "xml"],
      ["dlq", "purge"],
    ]) {
      const run = await shipyard(args);
      assert.equal(run.code, 2, `${args.join(" ")}: ${explain(run)}`);
      assert.notEqual(run.stderr, "", args.join(" "));
    }
  });

  void it("deploy examples/sample-tenant --wait prints every step and completes", async () => {
    const run = await shipyard(["deploy", SAMPLE, "--project", project, "--wait"]);
    assert.equal(run.code, 0, explain(run));
    for (const step of ["load project", "upload", "record deployment"]) {
      assert.match(run.stdout, new RegExp(`✓ ${step} \\(1 attempt`), explain(run));
    }
    assert.match(run.stdout, /deploy [0-9a-f-]{36} complete/);
  });

  void it("projects ls and info, as tables and as --json", async () => {
    const listed = json(await shipyard(["projects", "ls", "--json"]));
    assert.ok(Array.isArray(listed));
    const mine = listed.find(
      (p: unknown) => typeof p === "object" && p !== null && "project_id" in p && p.project_id === project,
    );
    assert.ok(mine, `project ${project} in ${JSON.stringify(listed)}`);

    const info = json(await shipyard(["projects", "info", project, "--json"]));
    assert.deepEqual(
      info !== null && typeof info === "object"
        ? { status: Reflect.get(info, "status"), classes: Reflect.get(info, "do_classes") }
        : null,
      { status: "active", classes: ["Counter"] },
    );
    const table = await shipyard(["projects", "ls"]);
    assert.equal(table.code, 0, explain(table));
    assert.match(table.stdout, /^PROJECT\s+STATUS/);
    assert.match(table.stdout, new RegExp(`${project}\\s+active\\s+Counter`));

    const usage = await shipyard(["do", "usage", project]);
    assert.equal(usage.code, 0, explain(usage));
    assert.match(usage.stdout, /threshold/);
    assert.match(usage.stdout, /as of:\s+\d{4}-\d{2}-\d{2} .*runtime_events, may trail by/);
  });

  void it("rollback without a previous deploy fails with the API's error, exit 1", async () => {
    const run = await shipyard(["rollback", project]);
    assert.equal(run.code, 1, explain(run));
    assert.match(run.stderr, /no previous deploy/);
    assert.match(run.stderr, /HTTP 409, code no_previous_deploy/);
    const missing = await shipyard(["projects", "info", "no-such-project"]);
    assert.equal(missing.code, 1, explain(missing));
    assert.match(missing.stderr, /HTTP 404/);
  });

  void it("deploy secrets: the first deploy prints the project's secret once; redeploys sign with it; rotate-secret", async () => {
    const own = `cli-sec-${crypto.randomUUID().slice(0, 8)}`;
    const first = await shipyard(["deploy", SAMPLE, "--project", own]);
    assert.equal(first.code, 0, explain(first));
    const secret = /^(whsec_\S+)$/m.exec(first.stdout)?.[1];
    assert.ok(secret, explain(first));
    assert.match(first.stderr, /shown once/);
    assert.match(first.stderr, /SHIPYARD_DEPLOY_SECRET/);

    // The shared secret only creates projects.
    const shared = await shipyard(["deploy", SAMPLE, "--project", own]);
    assert.equal(shared.code, 1, explain(shared));
    assert.match(shared.stderr, /HTTP 401/);
    assert.match(shared.stderr, /only creates projects/);

    const signed = await shipyard(["deploy", SAMPLE, "--project", own, "--wait"], { SHIPYARD_DEPLOY_SECRET: secret });
    assert.equal(signed.code, 0, explain(signed));
    assert.doesNotMatch(signed.stdout, /whsec_/);

    const rotated = await shipyard(["projects", "rotate-secret", own]);
    assert.equal(rotated.code, 0, explain(rotated));
    const fresh = /^(whsec_\S+)$/m.exec(rotated.stdout)?.[1];
    assert.ok(fresh && fresh !== secret, explain(rotated));

    const old = await shipyard(["deploy", SAMPLE, "--project", own], { SHIPYARD_DEPLOY_SECRET: secret });
    assert.equal(old.code, 1, explain(old));
    const file = path.join(tmpdir(), `shipyard-${own}.secret`);
    await writeFile(file, `${fresh}\n`, { mode: 0o600 });
    try {
      const fromFile = await shipyard(["deploy", SAMPLE, "--project", own, "--deploy-secret-file", file]);
      assert.equal(fromFile.code, 0, explain(fromFile));
    } finally {
      await rm(file, { force: true });
    }
  });

  void it("projects info lists D1, KV and R2 with sizes; down warns about each, --export writes the D1 SQL, and deletes them", async () => {
    const own = `cli-res-${crypto.randomUUID().slice(0, 8)}`;
    const deployed = await shipyard(["deploy", STORAGE, "--project", own, "--wait"]);
    assert.equal(deployed.code, 0, explain(deployed));
    assert.match(deployed.stdout, /✓ apply D1 migrations/);
    const tenantUrl = `${stack.url}/t/${own}`;
    assert.equal(
      (await fetch(`${tenantUrl}/notes?body=${encodeURIComponent("it's mine")}`, { method: "POST" })).status,
      201,
    );
    assert.equal((await fetch(`${tenantUrl}/files/a.txt`, { method: "PUT", body: "twelve bytes" })).status, 201);
    const info = await shipyard(["projects", "info", own]);
    assert.equal(info.code, 0, explain(info));
    assert.match(info.stdout, new RegExp(`d1 DB shipyard-${own}-db \\(\\d+ bytes\\)`), explain(info));
    assert.match(info.stdout, new RegExp(`kv CACHE shipyard-${own}-cache \\(size unknown\\)`), explain(info));
    assert.match(info.stdout, new RegExp(`r2 FILES shipyard-${own}-files \\(12 bytes\\)`), explain(info));

    const refused = await shipyard(["down", own]);
    assert.equal(refused.code, 2, explain(refused));
    assert.match(refused.stderr, /D1 database\s+DB/);
    assert.match(refused.stderr, /KV namespace\s+CACHE/);
    assert.match(refused.stderr, /R2 bucket\s+FILES/);
    assert.match(refused.stderr, /--export <file> keeps D1 as SQL/);

    const file = path.join(tmpdir(), `shipyard-${own}.sql`);
    try {
      const down = await shipyard(["down", own, "--yes", "--export", file, "--wait"]);
      assert.equal(down.code, 0, explain(down));
      assert.match(down.stderr, new RegExp(`exported D1 DB \\(shipyard-${own}-db\\) to `));
      assert.match(down.stdout, /✓ delete resources/);
      const sql = await readFile(file, "utf8");
      assert.match(sql, /CREATE TABLE notes/);
      assert.match(sql, /'written by migration 0001'/);
      assert.match(sql, /'it''s mine'/);
    } finally {
      await rm(file, { force: true });
    }
    assert.equal(Reflect.get(Object(json(await shipyard(["projects", "info", own, "--json"]))), "status"), "deleted");
  });

  void it("down without --yes on a non-terminal shows the data-loss warning and exits 2; --yes deletes", async () => {
    const refused = await shipyard(["down", project]);
    assert.equal(refused.code, 2, explain(refused));
    assert.match(refused.stderr, /WARNING: .*Counter/);
    assert.match(refused.stderr, /--yes/);
    assert.equal(
      Reflect.get(Object(json(await shipyard(["projects", "info", project, "--json"]))), "status"),
      "active",
    );

    const down = await shipyard(["down", project, "--yes", "--wait"]);
    assert.equal(down.code, 0, explain(down));
    assert.match(down.stdout, /down [0-9a-f-]{36} complete/);
    assert.equal(
      Reflect.get(Object(json(await shipyard(["projects", "info", project, "--json"]))), "status"),
      "deleted",
    );
  });

  void it("audit export --format csv holds the deploy and the down; --format json parses", async () => {
    const run = await shipyard(["audit", "export", "--format", "csv", "--project", project]);
    assert.equal(run.code, 0, explain(run));
    const lines = run.stdout.split("\r\n").filter((line) => line.length > 0);
    assert.equal(lines[0], "id,time,at,type,actor,project_id,details");
    assert.deepEqual(
      lines.slice(1).map((line) => line.split(",")[3]),
      ["deploy.requested", "deploy.completed", "down.requested", "down.completed"],
    );
    const exported = json(
      await shipyard(["audit", "export", "--format", "json", "--project", project, "--type", "down.*"]),
    );
    const entries = Reflect.get(Object(exported), "entries");
    assert.ok(Array.isArray(entries));
    assert.deepEqual(
      entries.map((entry: unknown) => Reflect.get(Object(entry), "type")),
      ["down.requested", "down.completed"],
    );
  });

  void it("dlq: a poison message is archived, listed, shown, redriven with progress, then purged", async () => {
    const marker = `cli-poison-${crypto.randomUUID().slice(0, 8)}`;
    const sent = await stack.request("POST", "/v1/admin/queues/shipyard-telemetry/send", {
      token: ADMIN_TOKEN,
      body: { body: { marker } },
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const id = await eventually(async () => {
      const listed = Reflect.get(
        Object(json(await shipyard(["dlq", "ls", "--queue", "shipyard-telemetry", "--json"]))),
        "items",
      );
      const item = Array.isArray(listed)
        ? listed.find((entry: unknown) => JSON.stringify(Reflect.get(Object(entry), "body")).includes(marker))
        : undefined;
      const found: unknown = item === undefined ? undefined : Reflect.get(Object(item), "id");
      return typeof found === "string" ? found : undefined;
    }, "the poison message in the archive");

    const shown = await shipyard(["dlq", "show", id]);
    assert.equal(shown.code, 0, explain(shown));
    assert.match(shown.stdout, new RegExp(marker));
    assert.match(shown.stdout, /last error:/);

    const redrive = await shipyard(["dlq", "redrive", "--id", id, "--max-per-second", "10"]);
    assert.equal(redrive.code, 0, explain(redrive));
    assert.match(redrive.stderr, /\] 1\/1 /, explain(redrive));
    assert.match(redrive.stdout, /completed: 1\/1 moved/);

    const refused = await shipyard(["dlq", "purge", "--id", id]);
    // The redriven poison is archived again under the same id (or not yet): either way, no --yes → no purge.
    assert.ok(refused.code === 2 || refused.code === 0, explain(refused));
    const purged = await shipyard(["dlq", "purge", "--id", id, "--yes"]);
    assert.equal(purged.code, 0, explain(purged));
  });
});
