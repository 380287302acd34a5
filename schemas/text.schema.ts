import { z } from "zod";

/**
 * A string that is stored as TEXT (D1, Durable Object SQLite) and must come back as it was sent:
 * well-formed UTF-16. JSON can carry a lone surrogate half ("\ud800"), but UTF-8 cannot: SQLite
 * stores U+FFFD in its place, so two ids differing only there would become one row (one event
 * lost), and the row would not carry the id that was sent. Refused at the edge instead.
 */
export const StoredTextSchema = z.string().refine((text) => text.isWellFormed(), {
  message: "must be well-formed Unicode (no lone surrogate halves)",
});
