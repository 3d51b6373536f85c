--[[ Plug-in Manager section: bridge URL, pairing token, timeout, "Test connection". ]]

local LrPrefs = import 'LrPrefs'
local LrTasks = import 'LrTasks'
local LrView = import 'LrView'

local BridgeClient = require 'BridgeClient'

local Provider = {}

local KEYS = { 'bridgeUrl', 'bridgeToken', 'bridgeTimeout' }

-- Operations the AI Enhance steps call; Test connection says which this bridge lacks.
Provider.USED_OPERATIONS = { 'upscale', 'restore-faces', 'denoise', 'remove-background', 'standardize' }

function Provider.startDialog(propertyTable)
	local prefs = LrPrefs.prefsForPlugin()
	propertyTable.bridgeUrl = prefs.bridgeUrl or BridgeClient.DEFAULT_URL
	propertyTable.bridgeToken = prefs.bridgeToken or ''
	propertyTable.bridgeTimeout = prefs.bridgeTimeout or BridgeClient.DEFAULT_TIMEOUT
	propertyTable.connectionStatus = LOC "$$$/RetouchBridge/NotTested=Not tested yet."
end

function Provider.save(propertyTable)
	local prefs = LrPrefs.prefsForPlugin()
	for _, key in ipairs(KEYS) do prefs[key] = propertyTable[key] end
	prefs.bridgeUrl = BridgeClient.normalizeUrl(prefs.bridgeUrl)
	prefs.bridgeToken = tostring(prefs.bridgeToken or ''):gsub('^%s+', ''):gsub('%s+$', '')
end

function Provider.endDialog(propertyTable)
	Provider.save(propertyTable)
end

function Provider.describeConnection(summary)
	local text = LOC("$$$/RetouchBridge/Connected=Connected to Retouch Bridge ^1 (protocol ^2); the token is accepted.",
		tostring(summary.version), tostring(summary.protocol))
	if not summary.operations then
		return text .. ' ' .. LOC("$$$/RetouchBridge/NoCaps=Its operations could not be listed: ^1",
			tostring(summary.capabilitiesProblem))
	end
	if summary.device then
		text = text .. ' ' .. LOC("$$$/RetouchBridge/Device=Running on ^1.", tostring(summary.device))
	end
	local have = {}
	for _, name in ipairs(summary.operations) do have[name] = true end
	local missing = {}
	for _, name in ipairs(Provider.USED_OPERATIONS) do
		if not have[name] then missing[#missing + 1] = name end
	end
	if #missing > 0 then
		text = text .. ' ' .. LOC("$$$/RetouchBridge/Missing=Not available on this bridge yet: ^1.",
			table.concat(missing, ', '))
	end
	return text
end

-- Runs the check and puts a sentence in propertyTable.connectionStatus.
function Provider.testConnection(propertyTable)
	propertyTable.connectionStatus = LOC "$$$/RetouchBridge/Testing=Testing…"
	local client = BridgeClient.new {
		url = propertyTable.bridgeUrl, token = propertyTable.bridgeToken, timeout = 15,
	}
	local summary, problem = client:testConnection()
	if summary then
		Provider.save(propertyTable)
		propertyTable.connectionStatus = Provider.describeConnection(summary)
		propertyTable.connectionOk = true
	else
		propertyTable.connectionStatus = client:describe(problem)
		propertyTable.connectionOk = false
	end
	return summary ~= nil
end

function Provider.sectionsForTopOfDialog(f, propertyTable)
	local bind = LrView.bind
	local labelWidth = LrView.share 'rb_pm_label'
	return {
		{
			title = LOC "$$$/RetouchBridge/PMTitle=Retouch Bridge",
			synopsis = bind 'connectionStatus',
			bind_to_object = propertyTable,
			f:row {
				f:static_text { title = LOC "$$$/RetouchBridge/Url=Bridge URL:",
					alignment = 'right', width = labelWidth },
				f:edit_field { value = bind 'bridgeUrl', width_in_chars = 30, immediate = true },
			},
			f:row {
				f:static_text { title = LOC "$$$/RetouchBridge/Token=Pairing token:",
					alignment = 'right', width = labelWidth },
				f:password_field { value = bind 'bridgeToken', width_in_chars = 30, immediate = true },
			},
			f:row {
				f:static_text { title = '', width = labelWidth },
				f:static_text {
					title = LOC "$$$/RetouchBridge/TokenHelp=Token: tray menu > Copy pairing token, or run 'retouch-bridge token'.",
				},
			},
			f:row {
				f:static_text { title = LOC "$$$/RetouchBridge/Timeout=Timeout (seconds):",
					alignment = 'right', width = labelWidth },
				f:edit_field { value = bind 'bridgeTimeout', min = 10, max = 7200, precision = 0, width_in_digits = 5 },
			},
			f:row {
				f:static_text { title = '', width = labelWidth },
				f:push_button {
					title = LOC "$$$/RetouchBridge/Test=Test connection",
					action = function()
						LrTasks.startAsyncTask(function() Provider.testConnection(propertyTable) end)
					end,
				},
				f:static_text { title = bind 'connectionStatus', fill_horizontal = 1, height_in_lines = 3,
					width_in_chars = 50 },
			},
		},
	}
end

return Provider
