--[[ The AI Enhance controls, shared by the Export dialog section and the
"Enhance selected photos" dialog. Views bind to the property table's rb_* keys. ]]

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

function SettingsView.controls(f, propertyTable)
	return f:column {
		bind_to_object = propertyTable,
		spacing = f:control_spacing(),
		f:row {
			label(f, LOC "$$$/RetouchBridge/Order=Order:"),
			f:popup_menu { value = bind 'rb_order', items = items(EnhanceSettings.ORDERS) },
		},
		f:row {
			label(f, ''),
			f:checkbox { title = LOC "$$$/RetouchBridge/Cleanup=Clean up", value = bind 'rb_cleanup' },
			f:popup_menu { value = bind 'rb_cleanupMode', items = items(EnhanceSettings.CLEANUP_MODES),
				enabled = bind 'rb_cleanup' },
			f:static_text { title = LOC "$$$/RetouchBridge/Strength=Strength:" },
			slider(f, 'rb_cleanupStrength', 'rb_cleanup'),
		},
		f:row {
			label(f, ''),
			f:checkbox { title = LOC "$$$/RetouchBridge/Faces=Restore faces", value = bind 'rb_faces' },
			f:popup_menu { value = bind 'rb_facesModel', items = items(EnhanceSettings.FACE_MODELS),
				enabled = bind 'rb_faces' },
			f:static_text { title = LOC "$$$/RetouchBridge/Fidelity=Fidelity:" },
			slider(f, 'rb_facesFidelity', 'rb_faces'),
		},
		f:row {
			label(f, ''),
			f:checkbox { title = LOC "$$$/RetouchBridge/Upscale=Upscale", value = bind 'rb_upscale' },
			f:popup_menu { value = bind 'rb_upscaleScale', enabled = bind 'rb_upscale',
				items = { { title = 'x2', value = 2 }, { title = 'x4', value = 4 } } },
			f:popup_menu { value = bind 'rb_upscaleModel', items = items(EnhanceSettings.UPSCALE_MODELS),
				enabled = bind 'rb_upscale' },
		},
		f:row {
			label(f, LOC "$$$/RetouchBridge/Background=Background:"),
			f:popup_menu { value = bind 'rb_background', items = items(EnhanceSettings.BACKGROUND_MODES) },
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
