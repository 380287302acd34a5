/**
 * Errors the runtime raises for Durable Object calls carry flags. `overloaded` means the object
 * has too many requests queued ("Durable Object is overloaded"): the caller should back off or
 * go elsewhere, not retry at once (developers.cloudflare.com/durable-objects/best-practices/error-handling/).
 */
export function isOverloaded(error: unknown): boolean {
  return typeof error === "object" && error !== null && "overloaded" in error && error.overloaded === true;
}
