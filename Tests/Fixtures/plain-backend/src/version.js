// The version string reported by GET /health. Editing it is how hot reload is observed.
module.exports = { VERSION: "1.0.0" };
