import { z } from "zod";

/**
 * The on-call console's session (producers/session.producer.ts): sign in with the admin token for
 * an HttpOnly cookie, ask who is signed in, sign out.
 */

/**
 * The header a cookie-authenticated state change must carry (producers/session.ts checks it). A
 * cross-site page cannot set it without a CORS preflight, which Shipyard never grants.
 */
export const CSRF_HEADER = "x-shipyard-csrf";

export const SessionRequestSchema = z.strictObject({
  token: z.string().min(1).max(1024).describe("the admin token (ADMIN_TOKEN)"),
});

export const SessionSchema = z.object({
  principal: z.string().describe("admin:<fingerprint>, as in the audit trail"),
  via: z.enum(["bearer", "session"]),
  expires_at: z.number().int().nullable().describe("epoch ms; null for a bearer token"),
});
export type Session = z.infer<typeof SessionSchema>;

export const SessionEndedSchema = z.object({ signed_out: z.boolean() });
