/** Vite bundles CSS imported for its side effect (the console's one stylesheet). */
declare module "*.css";
