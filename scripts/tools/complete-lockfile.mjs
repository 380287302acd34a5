#!/usr/bin/env node
/**
 * Completes package-lock.json with the platform-specific optional packages the registry mirror of
 * this workplace does not carry (other OSes' builds of workerd, oxlint, oxfmt, …). `npm install`
 * leaves them out when it cannot fetch them, and `npm ci` then refuses the lockfile as "out of
 * sync". Each missing entry is added with its `os`/`cpu`/`libc` constraints, so `npm ci` skips it
 * on this platform without fetching it — exactly what it does for them on a full registry.
 * Run after any `npm install` that changes the lockfile: `node scripts/tools/complete-lockfile.mjs`.
 */
import { readFileSync, writeFileSync } from "node:fs";

const OS = {
  android: "android",
  darwin: "darwin",
  freebsd: "freebsd",
  linux: "linux",
  openharmony: "openharmony",
  win32: "win32",
  windows: "win32",
};
const CPU = {
  "arm-eabi": "arm",
  "arm-gnueabihf": "arm",
  "arm-musleabihf": "arm",
  arm64: "arm64",
  x64: "x64",
  64: "x64",
  ia32: "ia32",
  ppc64: "ppc64",
  riscv64: "riscv64",
  s390x: "s390x",
};

/** os/cpu/libc from a package name like `@oxfmt/binding-linux-x64-musl` or `@cloudflare/workerd-darwin-64`. */
function platformOf(name) {
  const tail = name
    .split("/")
    .pop()
    .replace(/^(binding-|workerd-)/, "");
  const parts = tail.split("-");
  const os = OS[parts[0]];
  if (!os) return null;
  const rest = parts.slice(1);
  const libc =
    rest.includes("musl") || rest.includes("musleabihf")
      ? ["musl"]
      : rest.includes("gnu") || rest.includes("gnueabihf")
        ? ["glibc"]
        : undefined;
  const cpuKey = [rest.slice(0, 2).join("-"), rest[0]].find((key) => key in CPU);
  if (!cpuKey) return null;
  return { os: [os], cpu: [CPU[cpuKey]], ...(libc && os === "linux" ? { libc } : {}) };
}

const path = new URL("../../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(path, "utf8"));
const packages = lock.packages;
let added = 0;
for (const [location, meta] of Object.entries(packages)) {
  for (const [dep, version] of Object.entries(meta.optionalDependencies ?? {})) {
    const nested = `${location}/node_modules/${dep}`;
    if (packages[nested] || packages[`node_modules/${dep}`]) continue;
    const platform = platformOf(dep);
    if (!platform) {
      console.warn(`cannot tell the platform of ${dep}; left out`);
      continue;
    }
    packages[location ? nested : `node_modules/${dep}`] = {
      version,
      ...(meta.dev ? { dev: true } : {}),
      optional: true,
      ...platform,
    };
    added++;
  }
}
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lockfile: added ${added} platform-specific optional entries`);
