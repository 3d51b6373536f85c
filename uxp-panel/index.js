// UXP entry point: load the panel as a CommonJS module so its relative requires
// resolve from src/.
require("./src/main.js").start();
