// Vite's `?raw` imports (the sample tenant's sources, read as text by the deploy tests).
declare module "*?raw" {
  const source: string;
  export default source;
}
