-- luacheck config: `cd lightroom-plugin && luacheck .`
std = 'lua51'
max_line_length = 120
-- User-facing sentences (LOC strings) stay on one line so translators see them whole.
max_string_line_length = false

-- Globals Lightroom provides to every plug-in script.
read_globals = { 'import', 'LOC', '_PLUGIN', 'WIN_ENV', 'MAC_ENV' }

files['spec/'] = { std = '+busted' }
-- The stand-in defines Lightroom's globals.
files['spec/support/lightroom_standin.lua'] = { globals = { 'import', 'LOC', '_PLUGIN', 'WIN_ENV', 'MAC_ENV' } }
