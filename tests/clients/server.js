// The servers under test: the tiny random model (long generations, for limits and aborts) and the scripted model
// (known reasoning, answers and tool calls). QWEN3_BASE_URL and QWEN3_SCRIPTED_URL name servers already running with
// the arguments below (CI starts them); otherwise this generates the scripted model, starts both with `dotnet run`
// on free loopback ports and stops them when the tests end.
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export const API_KEY = "EMPTY";
// The tiny model also stands in for an embedding model (Qwen3-Embedding is a Qwen3 checkpoint) at /v1/embeddings.
// The chat model is named: with only --embedding-model the server would serve embeddings alone.
export const SERVER_ARGS = ["--port", "0", "--api-key", API_KEY, "--max-concurrent-requests", "1", "--context", "4096",
  "--model", path.join(root, "tests", "fixtures", "tiny-qwen3"), "--embedding-model", path.join(root, "tests", "fixtures", "tiny-qwen3")];
export const SCRIPTED_SERVER_ARGS = ["--port", "0", "--api-key", API_KEY, "--served-model-name", "scripted"];

const children = [];
let scriptedFolder;

/** Starts the server with `args` and returns its base URL once it logs where it listens. */
async function spawnServer(args) {
  const child = spawn("dotnet", ["run", "--project", path.join(root, "src", "Qwen3.Net.Server"), "--", ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  let output = "";
  for await (const data of child.stdout) {
    output += data.toString();
    const match = output.match(/Now listening on: (http:\/\/[^\s]+)/);
    if (match) {
      child.stdout.resume();
      return match[1];
    }
  }

  throw new Error(`The server exited before listening:\n${output}`);
}

export async function startServers() {
  if (process.env.QWEN3_BASE_URL && process.env.QWEN3_SCRIPTED_URL) {
    return { tiny: process.env.QWEN3_BASE_URL.replace(/\/$/, ""), scripted: process.env.QWEN3_SCRIPTED_URL.replace(/\/$/, "") };
  }

  scriptedFolder = mkdtempSync(path.join(tmpdir(), "qwen3-scripted-"));
  execFileSync("dotnet", ["run", "--project", path.join(root, "tests", "Qwen3.Net.ScriptedModel"), "--", scriptedFolder], { cwd: root, stdio: "inherit" });
  const [tiny, scripted] = await Promise.all([spawnServer(SERVER_ARGS), spawnServer(["--model", scriptedFolder, ...SCRIPTED_SERVER_ARGS])]);
  return { tiny, scripted };
}

export async function stopServers() {
  for (const child of children.filter((c) => c.exitCode === null)) {
    child.kill("SIGTERM");
    await once(child, "exit");
  }

  if (scriptedFolder) {
    rmSync(scriptedFolder, { recursive: true, force: true });
  }
}

/** Polls /health until `predicate(health)` holds; fails after 60 s. */
export async function waitForHealth(baseUrl, predicate) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    let health;
    try {
      health = await (await fetch(`${baseUrl}/health`)).json();
    } catch (e) {
      health = { error: String(e) };
    }

    if (predicate(health)) {
      return health;
    }

    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for the server's health: ${JSON.stringify(health)}`);
    }

    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
