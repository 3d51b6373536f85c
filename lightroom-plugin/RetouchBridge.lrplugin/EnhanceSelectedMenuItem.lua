-- Entry script for Library > Plug-in Extras > "Enhance selected photos…" (Info.lua).

local LrDialogs = import 'LrDialogs'
local LrFunctionContext = import 'LrFunctionContext'
local LrTasks = import 'LrTasks'

local EnhanceSelected = require 'EnhanceSelected'

-- Catalog writes and LrHttp need an async task; the context shows any error in a dialog
-- and runs the temp-folder cleanup however the task ends.
LrTasks.startAsyncTask(function()
	LrFunctionContext.callWithContext('RetouchBridge.enhanceSelected', function(context)
		LrDialogs.attachErrorDialogToFunctionContext(context)
		EnhanceSelected.run(context)
	end)
end)
