-- Loaded by busted before the specs: installs the Lightroom stand-in globals once.
require('lightroom_standin').install()
