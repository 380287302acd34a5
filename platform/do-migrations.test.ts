import { describe, it } from "vitest";
import {
  type DeclaredMigration,
  type MigrationInput,
  type MigrationPlan,
  type MigrationResult,
  computeMigration,
  nextShipyardTag,
  recomputeFromLiveTag,
} from "./do-migrations.ts";

// A tenant's declared history: create A and B, rename B to C, delete A, create D.
const HISTORY: DeclaredMigration[] = [
  { tag: "v1", new_sqlite_classes: ["A", "B"] },
  { tag: "v2", renamed_classes: [{ from: "B", to: "C" }] },
  { tag: "v3", deleted_classes: ["A"] },
  { tag: "v4", new_sqlite_classes: ["D"] },
];

const planned: { name: string; input: MigrationInput; plan: MigrationPlan }[] = [
  {
    name: "first deploy with classes",
    input: { storedTag: null, storedClasses: [], manifestClasses: ["Room", "Counter"] },
    plan: {
      kind: "migrate",
      tag: "shipyard-v1",
      classes: ["Counter", "Room"],
      migrations: { new_tag: "shipyard-v1", steps: [{ new_sqlite_classes: ["Counter", "Room"] }] },
    },
  },
  {
    name: "first deploy without classes",
    input: { storedTag: null, storedClasses: [], manifestClasses: [] },
    plan: { kind: "none", tag: null, classes: [] },
  },
  {
    name: "new class added",
    input: { storedTag: "shipyard-v1", storedClasses: ["Counter"], manifestClasses: ["Counter", "Room"] },
    plan: {
      kind: "migrate",
      tag: "shipyard-v2",
      classes: ["Counter", "Room"],
      migrations: { old_tag: "shipyard-v1", new_tag: "shipyard-v2", steps: [{ new_sqlite_classes: ["Room"] }] },
    },
  },
  {
    name: "unchanged",
    input: { storedTag: "shipyard-v2", storedClasses: ["Room", "Counter"], manifestClasses: ["Counter", "Room"] },
    plan: { kind: "none", tag: "shipyard-v2", classes: ["Counter", "Room"] },
  },
  {
    name: "classes added after a tenant-declared tag (declarations dropped since)",
    input: { storedTag: "v4", storedClasses: ["C"], manifestClasses: ["C", "E"], declared: [] },
    plan: {
      kind: "migrate",
      tag: "shipyard-v1",
      classes: ["C", "E"],
      migrations: { old_tag: "v4", new_tag: "shipyard-v1", steps: [{ new_sqlite_classes: ["E"] }] },
    },
  },
  {
    name: "first deploy with declared migrations",
    input: { storedTag: null, storedClasses: [], manifestClasses: ["C", "D"], declared: HISTORY },
    plan: {
      kind: "migrate",
      tag: "v4",
      classes: ["C", "D"],
      migrations: {
        new_tag: "v4",
        steps: [
          { new_sqlite_classes: ["A", "B"] },
          { renamed_classes: [{ from: "B", to: "C" }] },
          { deleted_classes: ["A"] },
          { new_sqlite_classes: ["D"] },
        ],
      },
    },
  },
  {
    name: "class renamed (declared)",
    input: { storedTag: "v1", storedClasses: ["A", "B"], manifestClasses: ["A", "C"], declared: HISTORY.slice(0, 2) },
    plan: {
      kind: "migrate",
      tag: "v2",
      classes: ["A", "C"],
      migrations: { old_tag: "v1", new_tag: "v2", steps: [{ renamed_classes: [{ from: "B", to: "C" }] }] },
    },
  },
  {
    name: "class deleted (declared)",
    input: { storedTag: "v2", storedClasses: ["A", "C"], manifestClasses: ["C"], declared: HISTORY.slice(0, 3) },
    plan: {
      kind: "migrate",
      tag: "v3",
      classes: ["C"],
      migrations: { old_tag: "v2", new_tag: "v3", steps: [{ deleted_classes: ["A"] }] },
    },
  },
  {
    name: "declared migrations partly applied: only the rest is sent",
    input: { storedTag: "v2", storedClasses: ["A", "C"], manifestClasses: ["C", "D"], declared: HISTORY },
    plan: {
      kind: "migrate",
      tag: "v4",
      classes: ["C", "D"],
      migrations: { old_tag: "v2", new_tag: "v4", steps: [{ deleted_classes: ["A"] }, { new_sqlite_classes: ["D"] }] },
    },
  },
  {
    name: "declared migrations all applied",
    input: { storedTag: "v4", storedClasses: ["C", "D"], manifestClasses: ["D", "C"], declared: HISTORY },
    plan: { kind: "none", tag: "v4", classes: ["C", "D"] },
  },
  {
    name: "declared key-value class",
    input: {
      storedTag: null,
      storedClasses: [],
      manifestClasses: ["Old"],
      declared: [{ tag: "a", new_classes: ["Old"] }],
    },
    plan: {
      kind: "migrate",
      tag: "a",
      classes: ["Old"],
      migrations: { new_tag: "a", steps: [{ new_classes: ["Old"] }] },
    },
  },
  {
    name: "adopting declared history over Shipyard's tag: only its net effect (a deletion)",
    input: {
      storedTag: "shipyard-v2",
      storedClasses: ["A", "B"],
      manifestClasses: ["A"],
      declared: [
        { tag: "v1", new_sqlite_classes: ["A", "B"] },
        { tag: "v2", deleted_classes: ["B"] },
      ],
    },
    plan: {
      kind: "migrate",
      tag: "v2",
      classes: ["A"],
      migrations: { old_tag: "shipyard-v2", new_tag: "v2", steps: [{ deleted_classes: ["B"] }] },
    },
  },
  {
    name: "adopting declared history: rename chain, a created-then-deleted class, a new KV class",
    input: {
      storedTag: "shipyard-v1",
      storedClasses: ["A", "B"],
      manifestClasses: ["A", "Z", "K"],
      declared: [
        { tag: "v1", new_sqlite_classes: ["A", "B", "T"] },
        { tag: "v2", renamed_classes: [{ from: "B", to: "Y" }], deleted_classes: ["T"] },
        { tag: "v3", renamed_classes: [{ from: "Y", to: "Z" }], new_classes: ["K"] },
      ],
    },
    plan: {
      kind: "migrate",
      tag: "v3",
      classes: ["A", "K", "Z"],
      migrations: {
        old_tag: "shipyard-v1",
        new_tag: "v3",
        steps: [{ renamed_classes: [{ from: "B", to: "Z" }] }, { new_classes: ["K"] }],
      },
    },
  },
  {
    name: "adopting declared history that matches: nothing to send",
    input: {
      storedTag: "shipyard-v1",
      storedClasses: ["A"],
      manifestClasses: ["A"],
      declared: [{ tag: "v1", new_sqlite_classes: ["A"] }],
    },
    plan: { kind: "none", tag: "shipyard-v1", classes: ["A"] },
  },
];

describe("computeMigration", () => {
  it.for(planned)("$name", ({ input, plan }, { expect }) => {
    expect(computeMigration(input)).toEqual({ ok: true, value: plan });
  });

  const refused: { name: string; input: MigrationInput; reason: string; classes?: string[]; message?: RegExp }[] = [
    {
      name: "class vanished, nothing declared",
      input: { storedTag: "shipyard-v1", storedClasses: ["Counter", "Room"], manifestClasses: ["Counter"] },
      reason: "data_loss",
      classes: ["Room"],
      message: /Room.*destroy their storage.*deleted_classes = \["Room"\].*renamed_classes/,
    },
    {
      name: "class vanished, declared migrations do not cover it",
      input: { storedTag: "v4", storedClasses: ["C", "D"], manifestClasses: ["C"], declared: HISTORY },
      reason: "data_loss",
      classes: ["D"],
    },
    {
      name: "class vanished while adopting declared history",
      input: {
        storedTag: "shipyard-v1",
        storedClasses: ["A", "B"],
        manifestClasses: ["A"],
        declared: [{ tag: "v1", new_sqlite_classes: ["A"] }],
      },
      reason: "data_loss",
      classes: ["B"],
    },
    {
      name: "stored tag unknown",
      input: { storedTag: "v9", storedClasses: ["C"], manifestClasses: ["C"], declared: HISTORY },
      reason: "unknown_tag",
      message: /"v9".*"v1", "v2", "v3", "v4"/,
    },
    {
      name: "manifest class no declared migration creates",
      input: { storedTag: "v4", storedClasses: ["C", "D"], manifestClasses: ["C", "D", "E"], declared: HISTORY },
      reason: "invalid_declared",
      classes: ["E"],
    },
    {
      name: "declared creation of an existing class",
      input: { storedTag: "v1", storedClasses: ["A", "B", "D"], manifestClasses: ["C", "D"], declared: HISTORY },
      reason: "invalid_declared",
      classes: ["D"],
    },
    {
      name: "declared rename of a missing class",
      input: { storedTag: "v1", storedClasses: ["A"], manifestClasses: ["A", "C"], declared: HISTORY.slice(0, 2) },
      reason: "invalid_declared",
      classes: ["B"],
    },
    {
      name: "declared deletion of a missing class",
      input: { storedTag: "v2", storedClasses: ["C"], manifestClasses: ["C"], declared: HISTORY.slice(0, 3) },
      reason: "invalid_declared",
      classes: ["A"],
    },
    {
      name: "duplicate declared tags",
      input: {
        storedTag: null,
        storedClasses: [],
        manifestClasses: ["A"],
        declared: [{ tag: "v1" }, { tag: "v1", new_sqlite_classes: ["A"] }],
      },
      reason: "invalid_declared",
    },
    {
      name: "declared tag in Shipyard's namespace",
      input: {
        storedTag: null,
        storedClasses: [],
        manifestClasses: ["A"],
        declared: [{ tag: "shipyard-v7", new_sqlite_classes: ["A"] }],
      },
      reason: "invalid_declared",
    },
    {
      name: "a class twice in one declared migration",
      input: {
        storedTag: null,
        storedClasses: [],
        manifestClasses: ["A"],
        declared: [{ tag: "v1", new_sqlite_classes: ["A"], deleted_classes: ["A"] }],
      },
      reason: "invalid_declared",
      classes: ["A"],
    },
  ];

  it.for(refused)("refuses: $name", ({ input, reason, classes, message }, { expect }) => {
    const result = computeMigration(input);
    expect(result).toMatchObject({ ok: false, error: { reason, ...(classes ? { classes } : {}) } });
    if (message && !result.ok) expect(result.error.message).toMatch(message);
  });

  it("does not depend on the order classes are listed in", ({ expect }) => {
    const a = computeMigration({
      storedTag: "shipyard-v3",
      storedClasses: ["X", "Y"],
      manifestClasses: ["Z", "X", "W", "Y"],
    });
    const b = computeMigration({
      storedTag: "shipyard-v3",
      storedClasses: ["Y", "X"],
      manifestClasses: ["W", "Y", "Z", "X"],
    });
    expect(a).toEqual(b);
  });
});

/** A migrate plan as its tags and step count; anything else as is. */
function summarize(result: MigrationResult) {
  return result.ok && result.value.kind === "migrate"
    ? { tag: result.value.tag, oldTag: result.value.migrations.old_tag, steps: result.value.migrations.steps.length }
    : result;
}

describe("tag mismatch: recompute from the live tag", () => {
  it.for([
    {
      name: "declared: the live tag is further along, fewer steps remain",
      input: { storedTag: "v1", storedClasses: ["A", "B"], manifestClasses: ["C", "D"], declared: HISTORY },
      live: { tag: "v3", classes: ["C"] },
      before: { tag: "v4", oldTag: "v1", steps: 3 },
      after: { tag: "v4", oldTag: "v3", steps: 1 },
    },
    {
      name: "Shipyard tags: the next tag follows the live one",
      input: { storedTag: "shipyard-v1", storedClasses: ["A"], manifestClasses: ["A", "B"] },
      live: { tag: "shipyard-v3", classes: ["A"] },
      before: { tag: "shipyard-v2", oldTag: "shipyard-v1", steps: 1 },
      after: { tag: "shipyard-v4", oldTag: "shipyard-v3", steps: 1 },
    },
  ])("$name", ({ input, live, before, after }, { expect }) => {
    expect(summarize(computeMigration(input))).toEqual(before);
    expect(summarize(recomputeFromLiveTag(input, live.tag, live.classes))).toEqual(after);
    // Same function, different starting point.
    expect(recomputeFromLiveTag(input, live.tag, live.classes)).toEqual(
      computeMigration({ ...input, storedTag: live.tag, storedClasses: live.classes }),
    );
  });

  it("keeps the stored classes when the live ones are unknown", ({ expect }) => {
    const input = { storedTag: "shipyard-v1", storedClasses: ["A"], manifestClasses: ["A"] };
    expect(recomputeFromLiveTag(input, "shipyard-v5")).toEqual({
      ok: true,
      value: { kind: "none", tag: "shipyard-v5", classes: ["A"] },
    });
  });
});

describe("nextShipyardTag", () => {
  it.for([
    [null, "shipyard-v1"],
    ["shipyard-v1", "shipyard-v2"],
    ["shipyard-v41", "shipyard-v42"],
    ["v7", "shipyard-v1"],
    ["shipyard-v0", "shipyard-v1"],
  ] as const)("%s → %s", ([stored, next], { expect }) => {
    expect(nextShipyardTag(stored)).toBe(next);
  });
});
