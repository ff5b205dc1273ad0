// The server under test: QWEN3_BASE_URL when set (CI starts it), otherwise this starts one with `dotnet run` on a
// free loopback port and stops it when the tests end. The tests rely on the arguments below (see README.md).
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const API_KEY = "EMPTY";
export const SERVER_ARGS = ["--port", "0", "--api-key", API_KEY, "--max-concurrent-requests", "1", "--context", "4096"];

let child;

export async function startServer() {
  if (process.env.QWEN3_BASE_URL) {
    return process.env.QWEN3_BASE_URL.replace(/\/$/, "");
  }

  const project = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "src", "Qwen3.Net.Server");
  child = spawn("dotnet", ["run", "--project", project, "--", ...SERVER_ARGS], { stdio: ["ignore", "pipe", "inherit"] });
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

export async function stopServer() {
  if (child && child.exitCode === null) {
    child.kill("SIGTERM");
    await once(child, "exit");
  }
}

/** Polls /health until `predicate(health)` holds; fails after 60 s. */
export async function waitForHealth(baseUrl, predicate) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const health = await (await fetch(`${baseUrl}/health`)).json();
    if (predicate(health)) {
      return health;
    }

    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for the server's health: ${JSON.stringify(health)}`);
    }

    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
