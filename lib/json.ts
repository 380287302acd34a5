/**
 * A JSON value. Used for RPC payloads whose shape the callee does not know: the RPC type mapping
 * turns `unknown` into `never` (it cannot prove `unknown` is serialisable), which would silently
 * erase a whole Result variant.
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
