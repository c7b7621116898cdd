// The "dates" task for the command line's task discovery; the task itself is browser-safe: src/tasks/dates.ts.
export * from "../../tasks/dates.js";
