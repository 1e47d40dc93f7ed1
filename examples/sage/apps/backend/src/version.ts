// The version GET /health reports. Editing it is how a reload is observed: tsc compiles it, node restarts.
export const VERSION: string = "1.0.0";
