// Imported first by the command-line entry points: a bad ATTNFLOW_BACKEND makes the library's Node entry throw while
// it loads (before any command code runs); this prints that as one clear line with exit code 2 instead of a stack
// trace. The entry point calls releaseEnvGuard() once its imports have loaded.
const onLoadError = (e: unknown): void => {
  const msg = e instanceof Error ? e.message : String(e);
  if (!msg.startsWith("ATTNFLOW_BACKEND=")) { console.error(e); process.exit(1); }
  console.error(`attnflow: ${msg}`);
  process.exit(2);
};
process.on("uncaughtException", onLoadError);

export function releaseEnvGuard(): void {
  process.removeListener("uncaughtException", onLoadError);
}
