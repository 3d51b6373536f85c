--[[ The AI Enhance controls, shared by the Export dialog section and the
"Enhance selected photos" dialog. Views bind to the property table's rb_* keys. ]]

local LrBinding = import 'LrBinding'
local LrDialogs = import 'LrDialogs'
local LrView = import 'LrView'

local EnhanceSettings = require 'EnhanceSettings'

local SettingsView = {}

local bind = LrView.bind

local function items(list)
	local out = {}
	for i, item in ipairs(list) do out[i] = { title = item.title, value = item.value } end
	return out
end

local function label(f, title)
	return f:static_text { title = title, alignment = 'right', width = LrView.share 'rb_label_width' }
end

local function slider(f, key, enabledKey)
	return f:row {
		f:slider { value = bind(key), min = 0, max = 1, width_in_chars = 20, enabled = bind(enabledKey) },
		f:edit_field { value = bind(key), min = 0, max = 1, precision = 2, width_in_digits = 4,
			enabled = bind(enabledKey) },
	}
end

-- Keeps rb_synopsis (and rb_warning, for the export dialog) in step with the settings.
function SettingsView.observe(propertyTable, lrFormatKey)
	local function update()
		propertyTable.rb_synopsis = EnhanceSettings.synopsis(propertyTable, lrFormatKey and propertyTable[lrFormatKey])
		propertyTable.rb_warning = ''
		if lrFormatKey then
			local ok, message = EnhanceSettings.validate(propertyTable, propertyTable[lrFormatKey])
			propertyTable.rb_warning = ok and '' or message
		end
	end
	for _, field in ipairs(EnhanceSettings.FIELDS) do propertyTable:addObserver(field.key, update) end
	if lrFormatKey then propertyTable:addObserver(lrFormatKey, update) end
	update()
end

-- "Choose…": a TOML or JSON recipe file; choosing one turns "Run a recipe file" on.
function SettingsView.chooseRecipe(propertyTable)
	local current = tostring(propertyTable.rb_recipePath or '')
	local paths = LrDialogs.runOpenPanel {
		title = LOC "$$$/RetouchBridge/ChooseRecipeTitle=Choose a Retouch Bridge recipe",
		prompt = LOC "$$$/RetouchBridge/ChooseRecipePrompt=Choose",
		canChooseFiles = true, canChooseDirectories = false, allowsMultipleSelection = false,
		fileTypes = { 'toml', 'json' },
		initialDirectory = current:match('^(.*)[/\\][^/\\]+$'),
	}
	if type(paths) == 'table' and paths[1] then
		propertyTable.rb_recipePath = paths[1]
		propertyTable.rb_useRecipe = true
	end
	return paths
end

function SettingsView.controls(f, propertyTable)
	-- The single steps stand aside while a recipe file runs instead of them.
	local stepsEnabled = LrBinding.negativeOfKey 'rb_useRecipe'
	return f:column {
		bind_to_object = propertyTable,
		spacing = f:control_spacing(),
		f:row {
			label(f, LOC "$$$/RetouchBridge/Recipe=Recipe:"),
			f:checkbox { title = LOC "$$$/RetouchBridge/UseRecipe=Run a recipe file", value = bind 'rb_useRecipe' },
			f:edit_field { value = bind 'rb_recipePath', width_in_chars = 32, immediate = true,
				enabled = bind 'rb_useRecipe' },
			f:push_button { title = LOC "$$$/RetouchBridge/ChooseRecipe=Choose…",
				action = function() SettingsView.chooseRecipe(propertyTable) end },
		},
		f:row {
			label(f, ''),
			f:static_text {
				-- luacheck: no max line length
				title = LOC "$$$/RetouchBridge/RecipeHelp=A recipe (TOML or JSON, see Retouch Bridge's docs/RECIPES.md) runs its own steps instead of the ones below. File paths in it must be absolute.",
				width_in_chars = 60, height_in_lines = 2,
			},
		},
		f:row {
			label(f, LOC "$$$/RetouchBridge/Order=Order:"),
			f:popup_menu { value = bind 'rb_order', items = items(EnhanceSettings.ORDERS), enabled = stepsEnabled },
		},
		f:row {
			label(f, ''),
			f:checkbox { title = LOC "$$$/RetouchBridge/Cleanup=Clean up", value = bind 'rb_cleanup',
				enabled = stepsEnabled },
			f:popup_menu { value = bind 'rb_cleanupMode', items = items(EnhanceSettings.CLEANUP_MODES),
				enabled = bind 'rb_cleanup' },
			f:static_text { title = LOC "$$$/RetouchBridge/Strength=Strength:" },
			slider(f, 'rb_cleanupStrength', 'rb_cleanup'),
		},
		f:row {
			label(f, ''),
			f:checkbox { title = LOC "$$$/RetouchBridge/Faces=Restore faces", value = bind 'rb_faces',
				enabled = stepsEnabled },
			f:popup_menu { value = bind 'rb_facesModel', items = items(EnhanceSettings.FACE_MODELS),
				enabled = bind 'rb_faces' },
			f:static_text { title = LOC "$$$/RetouchBridge/Fidelity=Fidelity:" },
			slider(f, 'rb_facesFidelity', 'rb_faces'),
		},
		f:row {
			label(f, ''),
			f:checkbox { title = LOC "$$$/RetouchBridge/Upscale=Upscale", value = bind 'rb_upscale',
				enabled = stepsEnabled },
			f:popup_menu { value = bind 'rb_upscaleScale', enabled = bind 'rb_upscale',
				items = { { title = 'x2', value = 2 }, { title = 'x4', value = 4 } } },
			f:popup_menu { value = bind 'rb_upscaleModel', items = items(EnhanceSettings.UPSCALE_MODELS),
				enabled = bind 'rb_upscale' },
		},
		f:row {
			label(f, LOC "$$$/RetouchBridge/Background=Background:"),
			f:popup_menu { value = bind 'rb_background', items = items(EnhanceSettings.BACKGROUND_MODES),
				enabled = stepsEnabled },
		},
		f:row {
			label(f, ''),
			f:checkbox {
				-- luacheck: no max line length
				title = LOC "$$$/RetouchBridge/Force16=For JPEG exports, render a 16-bit TIFF for the AI steps (best quality; the file is still saved as JPEG)",
				value = bind 'rb_force16',
			},
		},
		f:row {
			label(f, ''),
			f:static_text { title = bind 'rb_warning', fill_horizontal = 1,
				height_in_lines = 2, width_in_chars = 60 },
		},
	}
end

return SettingsView
